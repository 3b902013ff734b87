"""What the API key may do, as the exchange says (``GET /sapi/v1/account/apiRestrictions``, PROTOCOL.md §10), and
what a -2015 means once that is known. Pure: a reply in, an audit out; the request itself is
:mod:`services.keycheck`'s.

A dashboard left open all day should hold a key that reads and nothing else. Binance has no futures permission
that only reads: ``enableFutures`` is what the futures account methods need, and it also lets the key trade futures.
It is reported (``futures ✓``), not warned about — without it nothing works — and is why the IP restriction matters.
Everything else a key can do beyond reading is warned about, loudly: withdrawals, internal and universal transfers,
any other trading permission, and no IP restriction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

AuditState = Literal["checked", "unknown", "not available"]

#: Trading permissions beyond futures, by the exchange's field name, as a person reads them.
TRADING = {
    "enableSpotAndMarginTrading": "spot and margin trading",
    "enableMargin": "margin",
    "enableVanillaOptions": "options trading",
    "enableFixApiTrade": "FIX API trading",
    "enablePortfolioMarginTrading": "Portfolio Margin trading",
}
TRANSFERS = {
    "enableWithdrawals": "withdraw",
    "enableInternalTransfer": "transfer internally",
    "permitsUniversalTransfer": "make universal transfers",
}


@dataclass(frozen=True)
class KeyAudit:
    """The key's permissions at ``checked_at_ms``, or why they are not known. A field the reply did not carry is
    None ("not said"), never taken for False."""

    state: AuditState
    checked_at_ms: int
    reason: str = ""  # unknown / not available: why, in plain words (never a secret)
    rejected: bool = False  # the check itself was refused as credentials (-2014/-2015): key deleted or IP not listed
    reading: bool | None = None
    futures: bool | None = None
    ip_restricted: bool | None = None
    can: tuple[str, ...] = ()  # what the key may do beyond reading and futures: "withdraw", "spot and margin trading"
    portfolio_margin: bool | None = None  # enablePortfolioMarginTrading: the key belongs to a Portfolio Margin account

    @property
    def known(self) -> bool:
        return self.state == "checked"

    def warnings(self) -> list[str]:
        """Each thing the key should not be able to do, or be, for a dashboard; empty when it only reads."""
        if not self.known:
            return []
        said = [f"can {what}" if not what.endswith("trading") else f"allows {what}" for what in self.can]
        if self.ip_restricted is False:
            said.append("is not IP-restricted")
        return said

    def summary(self) -> str:
        """One line for the header: ``read-only ✓ IP-restricted ✓``, or what is wrong, or why it is not known."""
        if self.state == "not available":
            return f"key check: not available ({self.reason})" if self.reason else "key check: not available"
        if not self.known:
            return "key check: unknown" + (f" ({self.reason})" if self.reason else "")
        if warnings := self.warnings():
            return "KEY " + ", ".join(w.upper() for w in warnings) + " — use a read-only, IP-restricted key"
        parts = ["read-only ✓" if not self.can else "read-only ✗"]
        parts.append({True: "IP-restricted ✓", False: "IP-restricted ✗", None: "IP-restricted ?"}[self.ip_restricted])
        if self.futures is False:
            parts.append("futures ✗ (the account methods need it)")
        return " ".join(parts)

    def json_dict(self) -> dict[str, Any]:
        """For ``snapshot --json`` and ``watch --jsonl``: the facts, and the warnings in words."""
        return {
            "state": self.state,
            "checked_at_ms": self.checked_at_ms,
            "reason": self.reason or None,
            "reading": self.reading,
            "futures": self.futures,
            "ip_restricted": self.ip_restricted,
            "can": list(self.can),
            "portfolio_margin": self.portfolio_margin,
            "warnings": self.warnings(),
        }


def unknown(now_ms: int, reason: str, *, rejected: bool = False) -> KeyAudit:
    return KeyAudit("unknown", now_ms, reason=reason, rejected=rejected)


def not_available(now_ms: int, reason: str) -> KeyAudit:
    return KeyAudit("not available", now_ms, reason=reason)


def parse_restrictions(body: object, now_ms: int) -> KeyAudit:
    """The audit of an ``apiRestrictions`` reply; a reply that is not the object the docs show is "unknown"."""
    if not isinstance(body, Mapping) or not any(isinstance(body.get(f), bool) for f in ("enableReading", "ipRestrict")):
        return unknown(now_ms, "the exchange's reply was not a permissions list")

    def flag(name: str) -> bool | None:
        value = body.get(name)
        return value if isinstance(value, bool) else None

    can = tuple(what for name, what in {**TRANSFERS, **TRADING}.items() if flag(name))
    return KeyAudit(
        "checked",
        now_ms,
        reading=flag("enableReading"),
        futures=flag("enableFutures"),
        ip_restricted=flag("ipRestrict"),
        can=can,
        portfolio_margin=flag("enablePortfolioMarginTrading"),
    )


# -- -2015 explained (PROTOCOL.md §7, §10) ---------------------------------------------------------------------

RejectionKind = Literal["portfolio margin", "no futures", "ip not listed", "unclear"]

PORTFOLIO_MARGIN_TEXT = (
    "this is a Portfolio Margin account: balance-tui reads USDⓈ-M futures accounts; Portfolio Margin accounts use "
    "other endpoints, not supported yet"
)
ALL_THREE = (
    "the key lacks futures permission, this IP is not on the key's list, or this is a Portfolio Margin account "
    "(not supported yet); or the key was revoked or deleted"
)


@dataclass(frozen=True)
class Rejection:
    """Which of -2015's causes this is, as far as the audit tells, and the words for it."""

    kind: RejectionKind
    text: str


def explain_rejection(audit: KeyAudit | None) -> Rejection:
    """-2015 on the account methods, read with the key's audit: only when it cannot tell are all three said."""
    if audit is not None and audit.known:
        if audit.portfolio_margin:
            return Rejection("portfolio margin", PORTFOLIO_MARGIN_TEXT)
        if audit.futures is False:
            return Rejection("no futures", "the key has no futures permission: enable Futures for it in API Management")
    if audit is not None and audit.rejected:
        # The permissions request was refused too, from this same IP: the key's IP list, or a key that is gone.
        return Rejection(
            "ip not listed", "this IP is not on the key's list of trusted IPs (or the key was revoked or deleted)"
        )
    return Rejection("unclear", ALL_THREE)
