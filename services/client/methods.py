"""The typed methods of the futures WebSocket API that balance-tui sends: reads only, never an order.

Each takes the account's ``credentials`` (one connection may carry requests of several accounts, each signed with its
own key: PROTOCOL.md §10); without them, the client's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from services.client.auth import Security
from services.client.replies import Fetched, Reply, as_dict, listen_key, validated, validated_list
from services.models import AccountStatus, BalanceRow
from services.positions import Position

if TYPE_CHECKING:
    from services.endpoints import Credentials
    from services.signing import ParamValue


class AccountMethods:
    """Mixed into the client: what it asks, typed. ``request`` is the client's."""

    async def request(
        self,
        method: str,
        params: Mapping[str, ParamValue] | None = None,
        *,
        security: Security = "none",
        credentials: Credentials | None = None,
    ) -> Reply:
        raise NotImplementedError

    async def account_balance(self, *, v2: bool = True, credentials: Credentials | None = None) -> list[BalanceRow]:
        """``v2/account.balance`` (or the v1 seed): one row per asset."""
        return (await self.fetch_account_balance(v2=v2, credentials=credentials)).value

    async def fetch_account_balance(
        self, *, v2: bool = True, credentials: Credentials | None = None
    ) -> Fetched[list[BalanceRow]]:
        """:meth:`account_balance` with its reply's weight reading and round trip."""
        method = "v2/account.balance" if v2 else "account.balance"
        reply = await self.request(method, security="signed", credentials=credentials)
        return Fetched(validated_list(BalanceRow, reply.result, method, "balances"), reply.weight, reply.rtt_ms, method)

    async def account_status(self, *, v2: bool = False, credentials: Credentials | None = None) -> AccountStatus:
        """``account.status`` (v1: has ``multiAssetsMargin``; lists every symbol) or ``v2/account.status``."""
        return (await self.fetch_account_status(v2=v2, credentials=credentials)).value

    async def fetch_account_status(
        self, *, v2: bool = False, credentials: Credentials | None = None
    ) -> Fetched[AccountStatus]:
        """:meth:`account_status` with its reply's weight reading and round trip."""
        method = "v2/account.status" if v2 else "account.status"
        reply = await self.request(method, security="signed", credentials=credentials)
        return Fetched(validated(AccountStatus, reply.result, method), reply.weight, reply.rtt_ms, method)

    async def fetch_positions(self, *, credentials: Credentials | None = None) -> Fetched[list[Position]]:
        """``v2/account.position``: the symbols with a position or open orders; closed rows dropped."""
        method = "v2/account.position"
        reply = await self.request(method, security="signed", credentials=credentials)
        positions = validated_list(Position, reply.result, method, "positions")
        return Fetched([p for p in positions if p.position_amt], reply.weight, reply.rtt_ms, method)

    async def user_data_stream_start(self, *, credentials: Credentials | None = None) -> str:
        """Start (or extend) the user-data stream; returns the listen key."""
        reply = await self.request("userDataStream.start", security="api_key", credentials=credentials)
        return listen_key(reply.result, "userDataStream.start")

    async def user_data_stream_ping(self, *, credentials: Credentials | None = None) -> str:
        reply = await self.request("userDataStream.ping", security="api_key", credentials=credentials)
        return listen_key(reply.result, "userDataStream.ping")

    async def user_data_stream_stop(self, *, credentials: Credentials | None = None) -> None:
        await self.request("userDataStream.stop", security="api_key", credentials=credentials)

    async def session_status(self) -> dict[str, Any]:
        return as_dict((await self.request("session.status")).result, "session.status")
