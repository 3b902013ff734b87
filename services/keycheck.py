"""The key's permissions, asked of the exchange's REST API (``GET /sapi/v1/account/apiRestrictions``, PROTOCOL.md
§10) with httpx: at start and every few hours. A check that fails is an "unknown" audit, never an error that stops
anything; the key and the signature never appear in a log or a message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import quote

from services.clock import Clock
from services.endpoints import Credentials
from services.errors import CREDENTIAL_CODES, CredentialsRejected
from services.keyaudit import KeyAudit, Rejection, explain_rejection, not_available, parse_restrictions, unknown

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("balance_tui.keys")

PATH = "/sapi/v1/account/apiRestrictions"
CHECK_EVERY = 4 * 3600.0  # seconds: a key's permissions change when a person changes them, rarely
RECV_WINDOW = 10_000


class KeyChecker:
    """Asks for the permissions of ``credentials``' key at ``rest_url`` (None: the exchange has none, the testnet).

    ``server_time_ms`` is the exchange's time as the client knows it (its clock offset), for the timestamp.
    """

    def __init__(
        self,
        rest_url: str | None,
        credentials: Credentials | None,
        *,
        clock: Clock,
        server_time_ms: Callable[[], int] | None = None,
        timeout: float = 10.0,
        recv_window: int = RECV_WINDOW,
    ) -> None:
        self.rest_url = rest_url.rstrip("/") if rest_url else None
        self.credentials = credentials
        self.clock = clock
        self.server_time_ms = server_time_ms or clock.time_ms
        self.timeout = timeout
        self.recv_window = recv_window
        self.latest: KeyAudit | None = None

    def signed_query(self) -> str:
        """``recvWindow=…&timestamp=…&signature=…``: the signature is of the query string as sent (a base64 one
        of Ed25519 or RSA percent-encoded after signing, as every HTTP client must)."""
        assert self.credentials is not None
        text = f"recvWindow={self.recv_window}&timestamp={self.server_time_ms()}"
        return f"{text}&signature={quote(self.credentials.signer.sign(text), safe='')}"

    async def check(self) -> KeyAudit:
        """The key's audit now; kept as ``latest``."""
        self.latest = audit = await self._check()
        log.info("key check: %s", audit.summary())
        return audit

    async def watch(self, told: Callable[[KeyAudit], None]) -> None:
        """Check now (alongside the first poll, not before it), then every few hours, telling each audit."""
        while True:
            told(await self.check())
            await self.clock.sleep(CHECK_EVERY)

    async def explain(self, exc: CredentialsRejected, told: Callable[[KeyAudit], None]) -> Rejection | None:
        """A -2015 read with the key's audit, asked again now (it may be what changed): which of its causes."""
        if exc.code != -2015:
            return None
        audit = await self.check()
        told(audit)
        return explain_rejection(audit)

    async def _check(self) -> KeyAudit:
        now = self.clock.time_ms()
        if self.credentials is None:
            return not_available(now, "no key")
        if self.rest_url is None:
            return not_available(now, "the testnet has no key permissions endpoint")
        # Imported when needed: httpx brings its command line (and Rich) with it, a cost for start-up to skip.
        import httpx

        try:
            async with httpx.AsyncClient(timeout=self.timeout) as http:
                response = await http.get(
                    f"{self.rest_url}{PATH}?{self.signed_query()}",
                    headers={"X-MBX-APIKEY": self.credentials.api_key},
                )
        except httpx.HTTPError as exc:
            return unknown(self.clock.time_ms(), f"{self.rest_url} unreachable: {type(exc).__name__}")
        return _audit_of(response, self.clock.time_ms())


def _audit_of(response: httpx.Response, now_ms: int) -> KeyAudit:
    try:
        body = response.json(parse_float=Decimal)
    except ValueError:
        body = None
    if response.status_code == 200:
        return parse_restrictions(body, now_ms)
    code = body.get("code") if isinstance(body, dict) else None
    if response.status_code == 404:
        return not_available(now_ms, "this exchange has no key permissions endpoint")
    if code in (-2014, -2015):  # the key or this IP refused: what a -2015 on the account methods then means too
        return unknown(now_ms, f"the exchange refused the key (code {code})", rejected=True)
    if code in CREDENTIAL_CODES:
        return unknown(now_ms, f"the exchange refused the check (code {code})")
    if response.status_code in (418, 429):
        return unknown(now_ms, f"rate-limited by the exchange (HTTP {response.status_code})")
    where = f"code {code}" if isinstance(code, int) else f"HTTP {response.status_code}"
    return unknown(now_ms, f"the exchange answered {where}")
