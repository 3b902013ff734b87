"""The user-data stream: listen keys, the ``/private`` connections, and the events pushed on them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from services.simulator.account import amount
from services.simulator.auth import KeyRing
from services.simulator.core import LISTEN_KEY_LIFETIME_MS, PUSH_LAG_MS, ApiConnection, Refusal, json_default


class UserData(KeyRing):
    """Listen keys and the streams that read them."""

    def _init_user_data(self) -> None:
        self.listen_keys: dict[str, tuple[str, int]] = {}  # listen key → (api key, expires at)
        self._api: set[ApiConnection] = set()
        self._streams: dict[str, set[ServerConnection]] = {}

    @staticmethod
    def _stream_key(path: str, query: str) -> str | None:
        if path.startswith("/private/ws/"):
            return path.removeprefix("/private/ws/") or None
        keys = parse_qs(query).get("listenKey")
        return keys[0] if keys else None

    # -- connections ------------------------------------------------------------------------------------------

    def _user_data_stream(self, conn: ApiConnection, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if conn.session_key is not None and "apiKey" not in params:
            api_key = conn.session_key
        else:
            api_key = self._known_key(params).api_key
        now = self.server_time_ms()
        current = next((k for k, (owner, _) in self.listen_keys.items() if owner == api_key), None)
        if current is not None and not self._listen_key_alive(current):
            current = None
        if method == "userDataStream.start":
            key = current or secrets.token_urlsafe(48)
            self.listen_keys[key] = (api_key, now + LISTEN_KEY_LIFETIME_MS)
            return {"listenKey": key}
        if current is None:
            raise Refusal(400, -1125, "This listenKey does not exist.")
        if method == "userDataStream.ping":
            self.listen_keys[current] = (api_key, now + LISTEN_KEY_LIFETIME_MS)
            return {"listenKey": current}
        self.listen_keys.pop(current, None)
        self._spawn(self._close_streams(current))
        return {}

    def _listen_key_alive(self, key: str) -> bool:
        entry = self.listen_keys.get(key)
        return entry is not None and entry[1] > self.server_time_ms()

    # -- user-data stream -------------------------------------------------------------------------------------

    async def _serve_stream(self, ws: ServerConnection, path: str, query: str) -> None:
        key = self._stream_key(path, query)
        assert key is not None
        # As production is reported to behave (PROTOCOL.md §1): the key as a path segment is accepted and then
        # delivers nothing; the query form delivers only the events named in ``events=`` (none named: nothing).
        events = parse_qs(query).get("events")
        wanted = set(events[0].split("/")) if events and not path.startswith("/private/ws/") else set()
        combined = path.startswith("/private/stream")
        subscribers = self._streams.setdefault(key, set())
        setattr(ws, "bt_filter", (wanted, combined))  # noqa: B010 (per-connection delivery options)
        subscribers.add(ws)
        lifetime = asyncio.create_task(self._expire_after(ws, self.max_connection_age))
        try:
            await ws.wait_closed()
        finally:
            lifetime.cancel()
            subscribers.discard(ws)

    async def _close_streams(self, key: str) -> None:
        for ws in list(self._streams.get(key, ())):
            await ws.close(1000, "listen key closed")

    async def push(self, event: dict[str, Any], *, listen_key: str | None = None) -> int:
        """Send one user-data event to the streams of a listen key (all, by default); returns how many got it."""
        sent = 0
        for key, subscribers in list(self._streams.items()):
            if listen_key is not None and key != listen_key:
                continue
            for ws in list(subscribers):
                wanted, combined = getattr(ws, "bt_filter", (set(), False))
                if self.faults.stream_mute or event.get("e") not in wanted:
                    continue
                payload = {"stream": key, "data": event} if combined else event
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(json.dumps(payload, default=json_default))
                    sent += 1
        return sent

    async def push_balance_change(
        self, asset: str, delta: Decimal | str, *, reason: str = "ORDER", symbol: str | None = None
    ) -> dict[str, Any]:
        """Change an asset's wallet balance and push the ACCOUNT_UPDATE the exchange would send (``a.S``: the
        symbol of a FUNDING_FEE, added 2026)."""
        change = Decimal(delta)
        row = self.account.assets[asset]
        row.wallet += change
        # The transaction's time, which the push carries as T and a poll as updateTime (after the last one's, even
        # on a clock that has not moved); the event's time E a few ms after it.
        happened = max(self.server_time_ms() - PUSH_LAG_MS, row.update_time + 1)
        row.update_time = happened
        event = {
            "e": "ACCOUNT_UPDATE",
            "E": happened + PUSH_LAG_MS,
            "T": happened,
            "a": {
                "m": reason,
                "B": [{"a": asset, "wb": amount(row.wallet), "cw": amount(row.wallet), "bc": amount(change)}],
                "P": [],
            },
        }
        if symbol is not None:
            event["a"]["S"] = symbol  # type: ignore[index]
        await self.push(event)
        return event

    async def push_margin_call(self) -> dict[str, Any]:
        event = {
            "e": "MARGIN_CALL",
            "E": self.server_time_ms(),
            "cw": amount(self.account.assets["USDT"].wallet),
            "p": [
                {
                    "s": "ETHUSDT",
                    "ps": "LONG",
                    "pa": "1.327",
                    "mt": "CROSSED",
                    "iw": "0",
                    "mp": "187.17",
                    "up": "-1.16",
                    "mm": "1.61",
                }
            ],
        }
        await self.push(event)
        return event

    async def push_multi_assets(self, enabled: bool) -> dict[str, Any]:
        self.account.multi_assets = enabled
        event = {
            "e": "ACCOUNT_CONFIG_UPDATE",
            "E": self.server_time_ms(),
            "T": self.server_time_ms(),
            "ai": {"j": enabled},
        }
        await self.push(event)
        return event

    async def expire_listen_keys(self) -> None:
        """Expire every listen key now: streams get ``listenKeyExpired`` and are closed."""
        now = self.server_time_ms()
        for key in list(self.listen_keys):
            await self.push({"e": "listenKeyExpired", "E": str(now), "listenKey": key}, listen_key=key)
            self.listen_keys.pop(key, None)
            await self._close_streams(key)

    def drop_streams(self) -> int:
        """Abort every user-data stream connection (the API connections stay up); returns how many."""
        sockets = [ws for subs in self._streams.values() for ws in subs]
        for ws in sockets:
            ws.transport.abort()
        return len(sockets)

    async def drop_connections(self, code: int | None = None) -> None:
        """Close every connection, API and stream: abruptly, or with a close code."""
        sockets = [conn.ws for conn in self._api] + [ws for subs in self._streams.values() for ws in subs]
        for ws in sockets:
            if code is None:
                ws.transport.abort()
            else:
                await ws.close(code, "going away")

    # -- console ----------------------------------------------------------------------------------------------
