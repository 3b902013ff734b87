"""The WebSocket API (``/ws-fapi/v1``): one request loop a connection, the methods, and the replies with their
``rateLimits`` (PROTOCOL.md §2–§5, §7)."""

from __future__ import annotations

import contextlib
import json
from collections import deque
from decimal import Decimal
from typing import Any

from websockets.exceptions import ConnectionClosed

from services.simulator.auth import KeyRing
from services.simulator.core import SIGNED_METHODS, ApiConnection, Refusal, Venue, json_default
from services.simulator.faults import spoiled_reply
from services.simulator.userdata import UserDataHub
from services.simulator.weights import IpWeight

USER_DATA_METHODS = ("userDataStream.start", "userDataStream.ping", "userDataStream.stop")


class WsApi:
    """Answers requests as the exchange does: charged first, then checked, then dispatched; faults applied."""

    def __init__(self, venue: Venue, ip: IpWeight, keyring: KeyRing, user_data: UserDataHub) -> None:
        self._venue = venue
        self._ip = ip
        self._keyring = keyring
        self._user_data = user_data
        self._conns: set[ApiConnection] = set()
        self.last_params: dict[str, Any] = {}  # params of the last request, signature and all (keys are test keys)
        # (server time, method) of the requests received, the latest 50,000: a demo left open all day stays small.
        self.requests: deque[tuple[int, str]] = deque(maxlen=50_000)
        self.last_result: dict[str, Any] = {}

    def connections(self) -> list[ApiConnection]:
        return list(self._conns)

    async def serve(self, conn: ApiConnection) -> None:
        self._conns.add(conn)
        try:
            await self._venue.serve(conn.ws, lambda frame: self._on_request(conn, frame))
        finally:
            self._conns.discard(conn)

    async def _on_request(self, conn: ApiConnection, frame: str | bytes) -> bool:
        """Answer one request; False once the connection is to be dropped."""
        faults = self._venue.faults
        try:
            message = json.loads(frame, parse_float=Decimal)
        except ValueError:
            await self._send(conn, None, 400, error=(-1102, "Request is not valid JSON."))
            return True
        if not isinstance(message, dict):
            await self._send(conn, None, 400, error=(-1102, "Request is not a JSON object."))
            return True
        request_id = message.get("id")
        method = message.get("method")
        params = message.get("params") or {}
        self.requests.append((self._venue.server_time_ms(), str(method)))
        self.last_params = dict(params) if isinstance(params, dict) else {}
        conn.requests += 1
        if faults.drop_next or (faults.drop_after and conn.requests > faults.drop_after):
            faults.drop_next = max(0, faults.drop_next - 1)
            conn.ws.transport.abort()
            return False
        if faults.silent_after and conn.requests > faults.silent_after:
            return True  # read, never answered: this connection has gone quiet
        if faults.close_next:
            faults.close_next -= 1
            await conn.ws.close(faults.close_code, "going away")
            return False
        if faults.silent:
            return True
        if faults.shutdown_notice_next:
            faults.shutdown_notice_next -= 1
            await conn.ws.send(json.dumps({"event": {"e": "serverShutdown", "E": self._venue.server_time_ms()}}))
        count = self._ip.charge_method(str(method))
        try:
            self._ip.check(count)
            if not isinstance(method, str) or not isinstance(params, dict):
                raise Refusal(400, -1102, "Mandatory parameter 'method' was not sent, was empty/null, or malformed.")
            result = self._dispatch(conn, method, params)
        except Refusal as refusal:
            await self._refuse(conn, request_id, refusal)
            return not (refusal.status == 418 and faults.close_on_ban)
        self.last_result[method] = result
        await self._send(conn, request_id, 200, result=result)
        return True

    async def _refuse(self, conn: ApiConnection, request_id: Any, refusal: Refusal) -> None:
        faults = self._venue.faults
        data = None
        if refusal.status in (418, 429) and faults.retry_after_in_errors:
            retry = self._ip.banned_until_ms if refusal.status == 418 else (self._ip.window() + 1) * 60_000
            data = {"serverTime": self._venue.server_time_ms(), "retryAfter": retry}
        reply_id = None if refusal.to_null_id else request_id
        await self._send(conn, reply_id, refusal.status, error=(refusal.code, refusal.msg), data=data)
        if refusal.status == 418 and faults.close_on_ban:
            await conn.ws.close(1008, "IP banned")

    async def _send(
        self,
        conn: ApiConnection,
        request_id: Any,
        status: int,
        *,
        result: Any = None,
        error: tuple[int, str] | None = None,
        data: dict[str, int] | None = None,
    ) -> None:
        reply: dict[str, Any] = {"id": request_id, "status": status}
        if error is None:
            reply["result"] = result
        else:
            reply["error"] = {"code": error[0], "msg": error[1], **({"data": data} if data else {})}
        if conn.return_rate_limits:
            reply["rateLimits"] = [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self._ip.limit,
                    "count": self._ip.count(),
                }
            ]
        text = spoiled_reply(self._venue.faults, reply, json_default)
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(text)

    def _dispatch(self, conn: ApiConnection, method: str, params: dict[str, Any]) -> Any:
        keyring, account = self._keyring, self._venue.account
        keyring.check_revoked(conn, params)
        if method in SIGNED_METHODS:
            key = keyring.authenticate(conn, params)
            keyring.futures_account(key)
            if method in ("account.balance", "v2/account.balance"):
                return account.balance_rows()
            if method in ("account.position", "v2/account.position"):
                rows = account.position_rows(v2=method.startswith("v2/"))
                symbol = params.get("symbol")
                return [r for r in rows if r["symbol"] == symbol] if isinstance(symbol, str) else rows
            return account.status(v2=method.startswith("v2/"))
        if method == "session.logon":
            return keyring.logon(conn, params)
        if method == "session.status":
            return keyring.session(conn)
        if method == "session.logout":
            return keyring.logout(conn)
        if method in USER_DATA_METHODS:
            return self._user_data.handle(conn, method, params)
        raise Refusal(400, -1100, f"Unknown method '{method}'.")
