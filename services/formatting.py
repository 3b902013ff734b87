"""The one place amounts become text: exact Decimals to fixed-precision, thousands-separated strings.

The rule, everywhere: what is shown is never more favourable than the exchange's number. Amounts are cut toward
−∞ (a loss of −0.99999999 at four places is −1.0000, never −0.9999); a ratio where more is worse (the margin ratio)
is rounded up. Any magnitude the exchange can send formats: the arithmetic runs in a context as wide as the number.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from typing import Any

#: Privacy mode's one reading of every amount: always this wide, no digit, no sign — it leaks neither the size nor
#: the direction of a figure. Each formatter below gives it for ``private=True``: no amount reaches a screen another way.
MASK = "•••••"

_CONTEXTS: dict[int, Context] = {}


def _context_for(value: Decimal, places: int) -> Context:
    # quantize needs every digit of the result to fit the context's precision: 28 by default, so a 21-digit
    # balance at 8 places raised InvalidOperation. Size the context to the number instead (one per size, kept).
    digits = max(value.adjusted() + 1, 1) + places + 2
    prec = 40 if digits <= 40 else digits
    context = _CONTEXTS.get(prec)
    if context is None:
        context = _CONTEXTS[prec] = Context(prec=prec, Emax=999_999_999, Emin=-999_999_999)
    return context


def amount_width(value: Decimal, places: int, *, signed: bool = False) -> int:
    """How wide :func:`format_amount` writes ``value`` (at most one more than it: rounding may add a digit),
    without formatting it: what a column needs, cheaply."""
    digits = max(value.adjusted() + 1, 1)
    sign = 1 if value < 0 or (signed and value > 0) else 0
    return sign + digits + (digits - 1) // 3 + (places + 1 if places else 0)


def cut(value: Decimal, places: int, *, rounding: str = ROUND_FLOOR) -> Decimal:
    """``value`` at ``places`` decimals, cut toward −∞ (or as ``rounding`` says); exact for any magnitude."""
    quantum = Decimal(1).scaleb(-places)
    shown = value.quantize(quantum, rounding=rounding, context=_context_for(value, places))
    return shown if shown else abs(shown)  # no "-0.00"


def format_amount(value: Decimal, places: int, *, signed: bool = False, private: bool = False) -> str:
    """``value`` with ``places`` decimals and thousands separators, cut toward −∞ (:data:`MASK` when ``private``).

    ``signed`` puts ``+`` before a positive number so gains and losses read by sign, not by colour alone. A value
    that shows as zero shows without a sign.
    """
    if private:
        return MASK
    shown = cut(value, places)
    text = f"{shown:,.{places}f}"
    if signed and shown > 0:
        return "+" + text
    return text


#: Abbreviations a trader reads at a glance, largest first; past them, a power of ten.
SUFFIXES = ((12, "T"), (9, "B"), (6, "M"), (3, "K"))
ELLIPSIS = "…"


def fit_amount(value: Decimal, places: int, width: int, *, signed: bool = False, private: bool = False) -> str:
    """``value`` in at most ``width`` characters: every integer digit, or visibly shortened — never silently cut.

    First the amount as :func:`format_amount` gives it, then with fewer decimals; if the integer digits alone are
    too wide, an abbreviation cut toward −∞
    (``1.000T``, ``-42.123M``, ``1.234e21``), so the text never reads as a smaller magnitude or a better number;
    if even that cannot fit, an ellipsis says so. :data:`MASK` when ``private``.
    """
    if private:
        return MASK[: max(width, 1)]
    text = format_amount(value, places, signed=signed)
    if len(text) <= width:
        return text
    for fewer in range(places - 1, -1, -1):  # fewer decimals, still cut toward −∞: every integer digit stays
        text = format_amount(value, fewer, signed=signed)
        if len(text) <= width:
            return text
    magnitude = value.copy_abs().adjusted()  # the power of ten of the leading digit
    scale, suffix = next(((s, x) for s, x in SUFFIXES if magnitude >= s), (0, ""))
    if magnitude >= 15:
        scale, suffix = magnitude, f"e{magnitude}"
    for decimals in (3, 2, 1, 0):
        mantissa = cut(value.scaleb(-scale, context=_context_for(value, places)), decimals)
        short = f"{mantissa:,.{decimals}f}{suffix}"
        if signed and mantissa > 0:
            short = "+" + short
        if len(short) <= width and suffix:
            return short
    sign = "-" if value < 0 else ""
    return (sign + ELLIPSIS)[:width] if width > 0 else ""


def format_ratio(value: Decimal | None, places: int = 2) -> str:
    """A ratio where more is worse, as a percentage rounded up: ``Decimal("0.017591")`` → ``"1.76 %"``; ``—``."""
    if value is None:
        return "—"
    shown = cut(value * 100, places, rounding=ROUND_CEILING)
    return f"{shown:,.{places}f} %"


def format_exact(value: Decimal, *, private: bool = False) -> str:
    """A quantity or price as the exchange wrote it, every digit, with thousands separators (never ``1E+3``);
    :data:`MASK` when ``private``."""
    if private:
        return MASK
    exponent = value.as_tuple().exponent
    places = max(0, -exponent) if isinstance(exponent, int) else 0
    return f"{cut(value, places):,.{places}f}"


#: What privacy mode leaves in JSON: prices anyone can see and ratios, which say nothing of the account's size or
#: sign. Every other decimal string is an amount, and masked: a field added later is hidden until listed here.
PUBLIC_FIGURES = frozenset({"mark_price", "liquidation_price", "liq_distance", "margin_ratio"})
_DECIMAL = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")


def mask_json(value: Any) -> Any:
    """``value`` (JSON-ready: dicts, lists, strings, numbers) with every exact amount string as :data:`MASK`; times,
    weights, counts (JSON numbers), states and names stay (``snapshot --private``, ``watch --private``)."""
    if isinstance(value, dict):
        return {k: v if k in PUBLIC_FIGURES else mask_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_json(v) for v in value]
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return MASK
    return value
