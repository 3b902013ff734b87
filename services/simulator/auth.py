"""API keys the simulated exchange knows, and the checks a signed request must pass (PROTOCOL.md §3)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from services.signing import param_text, verify, verify_hmac
from services.simulator.core import MAX_RECV_WINDOW, ApiConnection, Refusal, Venue

#: A key that reads and may use the futures account methods, restricted to the IP it is used from.
READ_ONLY = {
    "ipRestrict": True,
    "enableReading": True,
    "enableWithdrawals": False,
    "enableInternalTransfer": False,
    "enableMargin": False,
    "enableFutures": True,
    "permitsUniversalTransfer": False,
    "enableVanillaOptions": False,
    "enableFixApiTrade": False,
    "enableFixReadOnly": False,
    "enableSpotAndMarginTrading": False,
    "enablePortfolioMarginTrading": False,
}
PERMISSION_NAMES = {
    "withdraw": "enableWithdrawals",
    "transfer": "enableInternalTransfer",
    "universal": "permitsUniversalTransfer",
    "trade": "enableSpotAndMarginTrading",
    "futures": "enableFutures",
    "ip-restrict": "ipRestrict",
    "ip-listed": "ip-listed",
    "portfolio-margin": "portfolio-margin",
}
INVALID_KEY = (401, -2015, "Invalid API-key, IP, or permissions for action.")


@dataclass
class SimKey:
    """An API key the simulated exchange knows: an HMAC secret or a public key."""

    api_key: str
    secret: str | None = field(default=None, repr=False)
    public_key: ed25519.Ed25519PublicKey | rsa.RSAPublicKey | None = None
    revoked: bool = False
    # What the key may do, as GET /sapi/v1/account/apiRestrictions says (PROTOCOL.md §10): read-only by default.
    permissions: dict[str, bool] = field(default_factory=lambda: dict(READ_ONLY))
    ip_allowed: bool = True  # False: this IP is not on the key's list, and every signed request is -2015
    portfolio_margin: bool = False  # a Portfolio Margin account's key: the fapi account methods answer -2015

    @property
    def kind(self) -> str:
        if self.secret is not None:
            return "hmac"
        return "ed25519" if isinstance(self.public_key, ed25519.Ed25519PublicKey) else "rsa"


class KeyRing:
    """The keys, the sessions logged on with them, and the signature and timestamp checks."""

    def __init__(self, venue: Venue) -> None:
        self._venue = venue
        self.keys: dict[str, SimKey] = {}
        self.sessions_enabled = True  # off: session.logon is refused, as for a key type that cannot log on

    def add_hmac_key(self, api_key: str | None = None, secret: str | None = None) -> tuple[str, str]:
        """Register an HMAC key; returns (api key, secret), made up when not given."""
        api_key = api_key or secrets.token_hex(32)
        secret = secret or secrets.token_hex(32)
        self.keys[api_key] = SimKey(api_key, secret=secret)
        return api_key, secret

    def add_public_key(
        self, public_key: ed25519.Ed25519PublicKey | rsa.RSAPublicKey, api_key: str | None = None
    ) -> str:
        """Register an Ed25519 or RSA public key; returns its API key."""
        api_key = api_key or secrets.token_hex(32)
        self.keys[api_key] = SimKey(api_key, public_key=public_key)
        return api_key

    def revoke_key(self, api_key: str) -> None:
        """Revoke a key: the next request of any connection using it is answered with ``id: null`` -2015."""
        self.keys[api_key].revoked = True

    def revoke_all(self, revoked: bool = True) -> None:
        """Revoke every key (or, ``revoked=False``, restore them all)."""
        for key in self.keys.values():
            key.revoked = revoked

    def set_permission(self, what: str, on: bool) -> str:
        """Change what every key may do (the console's ``key``): a permission by its short name or the exchange's
        field name, ``ip-listed`` (this IP on the keys' lists) or ``portfolio-margin`` (the account's kind)."""
        field_name = PERMISSION_NAMES.get(what, what)
        for key in self.keys.values():
            if field_name == "ip-listed":
                key.ip_allowed = on
            elif field_name == "portfolio-margin":
                key.portfolio_margin = on
                key.permissions["enablePortfolioMarginTrading"] = on
            elif field_name in READ_ONLY:
                key.permissions[field_name] = on
            else:
                raise KeyError(f"unknown permission {what!r} (known: {', '.join(PERMISSION_NAMES)})")
        return f"every key: {what} {'on' if on else 'off'}"

    def session(self, conn: ApiConnection) -> dict[str, Any]:
        return {
            "apiKey": conn.session_key,
            "authorizedSince": conn.authorized_since,
            "connectedSince": conn.connected_at_ms,
            "returnRateLimits": conn.return_rate_limits,
            "serverTime": self._venue.reported_time_ms(),
        }

    def logon(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        """``session.logon``: only an Ed25519 key can hold a connection's session (PROTOCOL.md §3)."""
        if not self.sessions_enabled:
            raise Refusal(400, -4056, "Invalid api key type.")
        faults = self._venue.faults
        if faults.logon_skew_next:
            faults.logon_skew_next -= 1
            raise Refusal(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        key = self.verify_signature(params)
        if key.kind != "ed25519":
            raise Refusal(400, -4056, "Invalid api key type.")
        conn.session_key = key.api_key
        conn.authorized_since = self._venue.server_time_ms()
        return self.session(conn)

    def logout(self, conn: ApiConnection) -> dict[str, Any]:
        conn.session_key = None
        conn.authorized_since = None
        return self.session(conn)

    def check_revoked(self, conn: ApiConnection, params: dict[str, Any]) -> None:
        for api_key in (conn.session_key, params.get("apiKey")):
            key = self.keys.get(api_key) if isinstance(api_key, str) else None
            if key is not None and key.revoked:
                conn.session_key = None
                raise Refusal(401, -2015, "Invalid API-key, IP, or permissions for action.", to_null_id=True)

    def authenticate(self, conn: ApiConnection, params: dict[str, Any]) -> SimKey:
        """The key a signed request acts as: the session's, or the one it names and signs with."""
        if conn.session_key is not None and "signature" not in params:
            self.check_timestamp(params)
            return self.keys[conn.session_key]
        return self.verify_signature(params)

    def futures_account(self, key: SimKey) -> None:
        """The fapi account methods: refused (-2015) to a key without futures permission and to a Portfolio
        Margin account's key, as production refuses them (PROTOCOL.md §7, §10)."""
        if key.revoked or not key.ip_allowed or key.portfolio_margin or not key.permissions.get("enableFutures"):
            raise Refusal(*INVALID_KEY)

    def api_restrictions(self, query: str, api_key: str | None) -> tuple[int, dict[str, Any]]:
        """``GET /sapi/v1/account/apiRestrictions``: signed like any REST USER_DATA call, the signature over the
        query string as sent (before ``&signature=``); the key in the ``X-MBX-APIKEY`` header."""
        text, _, signature = query.partition("&signature=")
        params: dict[str, Any] = dict(parse_qsl(text, keep_blank_values=True))
        for name in ("timestamp", "recvWindow"):
            if name in params and params[name].lstrip("-").isdigit():
                params[name] = int(params[name])
        try:
            key = self._signed_by({**params, "apiKey": api_key}, text, unquote(signature))
        except Refusal as refusal:
            return refusal.status, {"code": refusal.code, "msg": refusal.msg}
        return 200, {**key.permissions, "createTime": 1698645219000}

    def known_key(self, params: dict[str, Any]) -> SimKey:
        api_key = params.get("apiKey")
        if not isinstance(api_key, str) or not api_key:
            raise Refusal(400, -1102, "Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed.")
        key = self.keys.get(api_key)
        if key is None:
            raise Refusal(401, -2014, "API-key format invalid.")
        if key.revoked or not key.ip_allowed:
            raise Refusal(*INVALID_KEY)
        return key

    def verify_signature(self, params: dict[str, Any]) -> SimKey:
        """A WS API request: the signature is over its params but ``signature``, sorted by name (PROTOCOL.md §3)."""
        text = "&".join(f"{name}={_param_value(params[name])}" for name in sorted(params) if name != "signature")
        return self._signed_by(params, text, params.get("signature"))

    def _signed_by(self, params: dict[str, Any], text: str, signature: object) -> SimKey:
        """The key ``params`` name, once ``signature`` is its signature of ``text`` and the timestamp is in time:
        the one check behind both the WS API and REST."""
        key = self.known_key(params)
        if not isinstance(signature, str) or not signature:
            raise Refusal(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        self.check_timestamp(params)
        if key.secret is not None:
            valid = verify_hmac(key.secret, text, signature)
        else:
            assert key.public_key is not None
            valid = verify(key.public_key, text, signature)
        if not valid:
            raise Refusal(400, -1022, "Signature for this request is not valid.")
        return key

    def check_timestamp(self, params: dict[str, Any]) -> None:
        timestamp = params.get("timestamp")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise Refusal(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        recv_window = params.get("recvWindow", 5000)
        if isinstance(recv_window, bool) or not isinstance(recv_window, int) or not 0 < recv_window <= MAX_RECV_WINDOW:
            raise Refusal(400, -1130, "Data sent for parameter 'recvWindow' is not valid.")
        now = self._venue.server_time_ms()
        if timestamp >= now + 1000:
            raise Refusal(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - timestamp > recv_window:
            raise Refusal(400, -1021, "Timestamp for this request is outside of the recvWindow.")


def _param_value(value: Any) -> str:
    if isinstance(value, str | int | bool):
        return param_text(value)
    return str(value)
