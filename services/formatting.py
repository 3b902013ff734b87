"""The one place amounts become text: exact Decimals to fixed-precision, thousands-separated strings."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal


def format_amount(value: Decimal, places: int, *, signed: bool = False) -> str:
    """``value`` with ``places`` decimals and thousands separators.

    Digits beyond ``places`` are cut toward zero, never rounded up: a screen must not show a trader more than the
    exchange said they have. ``signed`` puts ``+`` before a positive number so gains and losses read by sign,
    not by colour alone. A value that shows as zero shows without a sign.
    """
    quantum = Decimal(1).scaleb(-places)
    shown = value.quantize(quantum, rounding=ROUND_DOWN)
    if not shown:
        shown = abs(shown)
    text = f"{shown:,.{places}f}"
    if signed and shown > 0:
        return "+" + text
    return text


def format_ratio(value: Decimal | None, places: int = 2) -> str:
    """A ratio as a percentage, e.g. ``Decimal("0.0176")`` → ``"1.76 %"``; ``—`` when unknown."""
    if value is None:
        return "—"
    return f"{format_amount(value * 100, places)} %"
