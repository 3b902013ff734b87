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
