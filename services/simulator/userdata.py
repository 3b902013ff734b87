"""The user-data stream: listen keys, the ``/private`` connections, and the events pushed on them."""

from __future__ import annotations

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
from services.simulator.core import LISTEN_KEY_LIFETIME_MS, PUSH_LAG_MS, ApiConnection, Refusal, Venue, json_default


class UserDataHub:
    """Listen keys, the ``/private`` connections that read them, and the events the account pushes on them."""

    def __init__(self, venue: Venue, keyring: KeyRing) -> None:
        self._venue = venue
        self._keyring = keyring
        self.account = venue.account
        self.listen_keys: dict[str, tuple[str, int]] = {}  # listen key → (api key, expires at)
        self._streams: dict[str, set[ServerConnection]] = {}

    def connections(self) -> list[ServerConnection]:
        """Every open user-data stream connection."""
        return [ws for subscribers in self._streams.values() for ws in subscribers]

    @staticmethod
    def stream_key(path: str, query: str) -> str | None:
        if path.startswith("/private/ws/"):
            return path.removeprefix("/private/ws/") or None
        keys = parse_qs(query).get("listenKey")
        return keys[0] if keys else None

    def handle(self, conn: ApiConnection, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if conn.session_key is not None and "apiKey" not in params:
            api_key = conn.session_key
        else:
            api_key = self._keyring.known_key(params).api_key
        now = self._venue.server_time_ms()
        current = next((k for k, (owner, _) in self.listen_keys.items() if owner == api_key), None)
        if current is not None and not self.listen_key_alive(current):
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
        self._venue.spawn(self._close_streams(current))
        return {}

    def listen_key_alive(self, key: str) -> bool:
        entry = self.listen_keys.get(key)
        return entry is not None and entry[1] > self._venue.server_time_ms()

    async def serve(self, ws: ServerConnection, path: str, query: str) -> None:
        key = self.stream_key(path, query)
        assert key is not None
        # As production is reported to behave (PROTOCOL.md §1): the key as a path segment is accepted and then
        # delivers nothing; the query form delivers only the events named in ``events=`` (none named: nothing).
        events = parse_qs(query).get("events")
        wanted = set(events[0].split("/")) if events and not path.startswith("/private/ws/") else set()
        combined = path.startswith("/private/stream")
        subscribers = self._streams.setdefault(key, set())
        setattr(ws, "bt_filter", (wanted, combined))  # noqa: B010 (per-connection delivery options)
        subscribers.add(ws)
        try:
            await self._venue.serve(ws)
        finally:
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
                if self._venue.faults.stream_mute or event.get("e") not in wanted:
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
        happened = max(self._venue.server_time_ms() - PUSH_LAG_MS, row.update_time + 1)
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
            "E": self._venue.server_time_ms(),
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
            "E": self._venue.server_time_ms(),
            "T": self._venue.server_time_ms(),
            "ai": {"j": enabled},
        }
        await self.push(event)
        return event

    async def expire_listen_keys(self) -> None:
        """Expire every listen key now: streams get ``listenKeyExpired`` and are closed."""
        now = self._venue.server_time_ms()
        for key in list(self.listen_keys):
            await self.push({"e": "listenKeyExpired", "E": str(now), "listenKey": key}, listen_key=key)
            self.listen_keys.pop(key, None)
            await self._close_streams(key)

    def drop_streams(self) -> int:
        """Abort every user-data stream connection (the API connections stay up); returns how many."""
        sockets = self.connections()
        for ws in sockets:
            ws.transport.abort()
        return len(sockets)

    async def change_position(
        self,
        symbol: str,
        side: str,
        amount_: Decimal | str,
        entry: Decimal | str,
        *,
        reason: str = "ORDER",
        margin_asset: str | None = None,
    ) -> dict[str, Any]:
        """Open, change or (amount 0) close a position and push the ``ACCOUNT_UPDATE`` with its ``P[]`` (each entry
        naming its margin asset in ``ma``, as production does)."""
        held = self.account.positions.get((symbol, side))
        guess = margin_asset or (held.margin_asset if held else "USDC" if symbol.endswith("USDC") else "USDT")
        before = self.account.assets[guess].update_time if guess in self.account.assets else 0
        happened = max(self._venue.server_time_ms() - PUSH_LAG_MS, before + 1)  # T, after the asset's last transaction
        entry_p = self.account.change_position(
            symbol, side, Decimal(amount_), Decimal(entry), happened, margin_asset=margin_asset
        )
        asset = entry_p["ma"]
        wallet = amount(self.account.assets[asset].wallet)
        event = {
            "e": "ACCOUNT_UPDATE", "E": happened + PUSH_LAG_MS, "T": happened,
            "a": {"m": reason, "B": [{"a": asset, "wb": wallet, "cw": wallet, "bc": "0"}], "P": [entry_p]},
        }  # fmt: skip
        await self.push(event)
        return event
