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
        self._trades = 0  # trade and order ids

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

    async def fill(
        self,
        symbol: str,
        side: str,
        amount_: Decimal | str,
        price: Decimal | str,
        *,
        realized: Decimal | str = "0",
        commission: Decimal | str = "0",
        commission_asset: str | None = None,
    ) -> list[dict[str, Any]]:
        """A fill that leaves the position at ``amount_`` (0: closed) and books ``realized`` PnL and ``commission``
        (charged, in ``commission_asset``: the margin asset by default) into the wallets, pushed as the exchange
        does: the ``ACCOUNT_UPDATE`` (``m`` ORDER, the wallets and the position) and the fill's
        ``ORDER_TRADE_UPDATE`` (``rp``, ``n``, ``N``). Returns both events."""
        held = self.account.positions.get((symbol, side))
        asset = held.margin_asset if held else "USDC" if symbol.endswith("USDC") else "USDT"
        fee_asset = commission_asset or asset
        realized_, fee = Decimal(realized), Decimal(commission)
        stamps = [self.account.assets[a].update_time for a in {asset, fee_asset} if a in self.account.assets]
        happened = max(self._venue.server_time_ms() - PUSH_LAG_MS, max(stamps, default=0) + 1)
        was, now = (held.amount if held else Decimal(0)), Decimal(amount_)
        qty = f"{abs(now - was):f}"
        # Adding moves the entry to the average of what was held and what was added; taking off leaves it.
        entry = held.entry if held and abs(now) <= abs(was) else (
            (was * (held.entry if held else 0) + (now - was) * Decimal(price)) / now)  # fmt: skip
        position = self.account.change_position(symbol, side, now, entry, happened, realize=False)
        moved = {asset: realized_, fee_asset: Decimal(0)} if fee_asset != asset else {asset: realized_ - fee}
        if fee_asset != asset:
            moved[fee_asset] -= fee
        rows = []
        for name, delta in moved.items():
            row = self.account.assets[name]
            row.wallet += delta
            row.update_time = happened
            rows.append({"a": name, "wb": amount(row.wallet), "cw": amount(row.wallet), "bc": "0"})
        self._trades += 1
        update = {"e": "ACCOUNT_UPDATE", "E": happened + PUSH_LAG_MS, "T": happened,
                  "a": {"m": "ORDER", "B": rows, "P": [position]}}  # fmt: skip
        order = {
            "e": "ORDER_TRADE_UPDATE", "E": happened + PUSH_LAG_MS, "T": happened,
            "o": {
                "s": symbol, "c": f"sim-{self._trades}", "S": "BUY" if now > was else "SELL", "o": "MARKET",
                "f": "GTC", "q": qty, "p": "0", "ap": f"{Decimal(price):f}", "sp": "0", "x": "TRADE", "X": "FILLED",
                "i": self._trades, "l": qty, "z": qty, "L": f"{Decimal(price):f}",
                "N": fee_asset, "n": amount(fee), "T": happened, "t": self._trades, "b": "0", "a": "0",
                "m": False, "R": False, "wt": "CONTRACT_PRICE", "ot": "MARKET", "ps": side, "cp": False,
                "rp": amount(realized_), "pP": False, "si": 0, "ss": 0, "V": "NONE", "pm": "NONE", "gtd": 0,
            },
        }  # fmt: skip
        # The wallet's change first, the order's after (nothing documents the order: the client takes either).
        await self.push(update)
        await self.push(order)
        return [update, order]

    def set_risk(
        self, symbol: str, side: str, *, liquidation: Decimal | str | None = None, adl: int | None = None
    ) -> None:
        """The exchange's liquidation price and ADL quantile of a position from now on (what the next poll says)."""
        position = self.account.positions[(symbol, side)]
        if liquidation is not None:
            position.liquidation = Decimal(liquidation)
        if adl is not None:
            position.adl = adl
