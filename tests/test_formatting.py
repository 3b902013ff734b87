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
        ("-0.99999999", 2, False, "-0.99"),
        ("-0.001", 2, True, "0.00"),  # shows as zero: no sign
        ("1.5", 4, True, "+1.5000"),
        ("-1234567.891", 3, True, "-1,234,567.891"),
        ("0E-8", 8, False, "0.00000000"),
    ],
)
def test_format_amount(value: str, places: int, signed: bool, expected: str) -> None:
    assert format_amount(Decimal(value), places, signed=signed) == expected


def test_format_ratio() -> None:
    assert format_ratio(Decimal("0.017597")) == "1.75 %"
    assert format_ratio(None) == "—"
