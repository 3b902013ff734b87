"""Models: exact decimals in and out, clear errors for bad amounts, unknown fields ignored."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from services.models import (
    AccountSnapshot,
    AccountStatus,
    AssetBalance,
    BalanceRow,
    RateLimit,
    WeightReading,
    decimal_text,
)

ROW: dict[str, Any] = {
    "accountAlias": "SgsR",
    "asset": "USDT",
    "balance": "122607.35137903",
    "crossWalletBalance": "23.72469206",
    "crossUnPnl": "-0.00000001",
    "availableBalance": "0.00000000",
    "maxWithdrawAmount": "23.72469206",
    "marginAvailable": True,
    "updateTime": 1617939110373,
}


def test_exchange_text_survives_exactly() -> None:
    row = BalanceRow.model_validate(ROW)
    assert row.balance == Decimal("122607.35137903")
    dumped = json.loads(row.model_dump_json())
    for field in ("balance", "crossWalletBalance", "crossUnPnl", "availableBalance", "maxWithdrawAmount"):
        assert dumped[field] == ROW[field]
    assert dumped["balance"] == "122607.35137903"
    assert dumped["availableBalance"] == "0.00000000"  # not "0E-8"


def test_snapshot_json_keeps_every_amount_as_text() -> None:
    row = AssetBalance.from_balance(BalanceRow.model_validate(ROW), method="account.balance", received_at_ms=1)
    data = AccountSnapshot(balances={"USDT": row}).json_dict()
    assert data["balances"]["USDT"]["wallet_balance"] == "122607.35137903"
    assert data["balances"]["USDT"]["cross_un_pnl"] == "-0.00000001"


@pytest.mark.parametrize("bad", ["abc", "", "NaN", "Infinity", "12O.5", 1.5, True, None, [1]])
def test_a_malformed_amount_is_an_error_not_a_zero(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        BalanceRow.model_validate({**ROW, "balance": bad})
    assert "balance" in str(info.value)


def test_unknown_fields_are_ignored_and_missing_flags_are_unknown() -> None:
    row = BalanceRow.model_validate({**ROW, "brandNewField": "1", "marginAvailable": None})
    assert row.margin_available is None
    assert not hasattr(row, "brandNewField")


def test_models_are_frozen() -> None:
    row = BalanceRow.model_validate(ROW)
    with pytest.raises(ValidationError):
        row.balance = Decimal(0)  # type: ignore[misc]


def test_account_status_totals_and_margin_ratio() -> None:
    totals = {
        "totalInitialMargin": "10", "totalMaintMargin": "2.5", "totalWalletBalance": "100",
        "totalUnrealizedProfit": "0", "totalMarginBalance": "100", "totalPositionInitialMargin": "10",
        "totalOpenOrderInitialMargin": "0", "totalCrossWalletBalance": "100", "totalCrossUnPnl": "0",
        "availableBalance": "90", "maxWithdrawAmount": "90",
    }  # fmt: skip
    status = AccountStatus.model_validate({**totals, "multiAssetsMargin": True, "assets": [], "positions": [{}]})
    assert status.multi_assets_margin is True
    assert status.totals().margin_ratio == Decimal("0.025")
    v2 = AccountStatus.model_validate({**totals, "totalMarginBalance": "0", "assets": []})
    assert v2.multi_assets_margin is None
    assert v2.margin_ratio is None


def test_rate_limit_windows_reset_on_the_minute() -> None:
    limit = RateLimit.model_validate(
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400, "count": 20}
    )
    assert limit.window_ms == 60_000
    assert limit.resets_at_ms(1_700_000_030_500) == 1_700_000_040_000  # the next whole minute
    assert limit.resets_at_ms(1_700_000_040_000) == 1_700_000_100_000
    reading = WeightReading(count=20, limit=2400, own=15, resets_at_ms=0, server_time_ms=0)
    assert reading.others == 5
    assert WeightReading(count=3, limit=2400, own=9, resets_at_ms=0, server_time_ms=0).others == 0


def test_decimal_text_is_positional() -> None:
    assert decimal_text(Decimal("1E+3")) == "1000"
    assert decimal_text(Decimal("-0.00000000")) == "0.00000000"  # never a negative zero: it reads as a loss
