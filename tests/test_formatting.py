"""The one amount formatter: separators, fixed places, cut toward zero, sign for gains."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.formatting import format_amount, format_ratio


@pytest.mark.parametrize(
    ("value", "places", "signed", "expected"),
    [
        ("122607.35137903", 2, False, "122,607.35"),
        ("122607.35137903", 8, False, "122,607.35137903"),
        ("0.99999999", 2, False, "0.99"),  # never rounded up past what the exchange said
        ("-0.99999999", 2, False, "-1.00"),  # cut toward −∞: a loss never looks smaller than it is
        ("-0.99999999", 4, True, "-1.0000"),
        ("-0.001", 2, True, "-0.01"),
        ("0.001", 2, True, "0.00"),  # shows as zero: no sign
        ("-0", 2, True, "0.00"),  # no "-0.00"
        ("1.5", 4, True, "+1.5000"),
        ("-1234567.891", 3, True, "-1,234,567.891"),
        ("0E-8", 8, False, "0.00000000"),
    ],
)
def test_format_amount(value: str, places: int, signed: bool, expected: str) -> None:
    assert format_amount(Decimal(value), places, signed=signed) == expected


def test_format_ratio_rounds_toward_the_worse_side() -> None:
    assert format_ratio(Decimal("0.017591")) == "1.76 %"  # more margin ratio is worse: never shown lower
    assert format_ratio(Decimal("0.0175")) == "1.75 %"
    assert format_ratio(None) == "—"


@pytest.mark.parametrize("digits", [20, 21, 30, 60])
def test_any_magnitude_formats(digits: int) -> None:
    value = Decimal("9" * digits + ".12345678")
    text = format_amount(value, 8)
    assert text.replace(",", "") == "9" * digits + ".12345678"
    negative = Decimal("-" + "9" * digits + ".12345678")  # not -value: negation would round at 28 digits
    assert format_amount(negative, 4) == "-" + f"{int('9' * digits):,}" + ".1235"


# -- whale-sized numbers: every integer digit, or visibly cut, never more favourable --------------------------------

from decimal import Context, localcontext  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from services.formatting import SUFFIXES, fit_amount  # noqa: E402

amounts = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: abs(d.adjusted()) < 60 if d else True
)


def shown_value(text: str) -> Decimal:
    """The number a trader reads off a fitted cell (an abbreviation scaled back up)."""
    body = text.replace(",", "").lstrip("+")
    if body.endswith(tuple(suffix for _, suffix in SUFFIXES)):
        scale = dict((suffix, power) for power, suffix in SUFFIXES)[body[-1]]
        return Decimal(body[:-1]).scaleb(scale)
    if "e" in body:
        mantissa, power = body.split("e")
        return Decimal(mantissa).scaleb(int(power))
    return Decimal(body)


@settings(max_examples=400, deadline=None)
@given(value=amounts, places=st.integers(0, 8), width=st.integers(9, 30), signed=st.booleans())
def test_a_fitted_amount_is_never_more_favourable_and_never_silently_loses_a_digit(
    value: Decimal, places: int, width: int, signed: bool
) -> None:
    text = fit_amount(value, places, width, signed=signed)
    assert len(text) <= width
    assert "…" not in text  # at nine columns or more, every value has a readable form
    with localcontext(Context(prec=200)):
        shown = shown_value(text)
        assert shown <= value  # cut toward −∞: never more than the exchange said, never a smaller loss
        digits = len(str(int(abs(value))))
        if not text[-1].isalpha() and "e" not in text:
            # Every integer digit is there (decimals may be fewer, cut toward −∞).
            assert len(text.replace(",", "").lstrip("+-").split(".")[0]) >= digits
        else:
            # Shortened, and visibly: a suffix or a power of ten, and the same order of magnitude as the value.
            assert text[-1] in "TBMK" or "e" in text
            assert abs(shown).adjusted() >= abs(value).adjusted() - 1 or abs(value) < 1000


@pytest.mark.parametrize(
    ("value", "width", "expected"),
    [
        ("1000000000000.12345678", 12, "1.000T"),
        ("900000000000.00000000", 12, "900.000B"),
        ("-1234567.891", 10, "-1,234,568"),  # fewer decimals first, cut toward −∞
        ("-1234567.891", 8, "-1.235M"),
        ("1234567890123456789012.5", 12, "1.234e21"),
        ("122607.35137903", 17, "122,607.35137903"),
    ],
)
def test_fit_amount_examples(value: str, width: int, expected: str) -> None:
    assert fit_amount(Decimal(value), 8, width) == expected


def test_error_texts_never_stammer() -> None:
    from services.errors import because

    assert because("could not fetch balances", "") == "could not fetch balances"
    assert because("could not fetch balances:", ": timed out") == "could not fetch balances: timed out"
    assert because("x", None) == "x"


def test_the_next_age_change_is_the_next_step_a_glance_needs() -> None:
    from widgets.columns import coarse_age, next_age_change_ms

    for step in (5, 15):
        for age in (0, 1_234, 4_999, 5_000, 7_500, 14_999, 15_000, 59_999, 60_000, 61_000, 3_599_999, 90_000_000):
            later = age + next_age_change_ms(age, step)
            assert coarse_age(later / 1000, step) != coarse_age(age / 1000, step), (step, age)  # it changes then
            assert coarse_age((later - 1) / 1000, step) == coarse_age(age / 1000, step), (step, age)  # not sooner
