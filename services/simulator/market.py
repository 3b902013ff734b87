"""Mark prices on ``/market`` (PROTOCOL.md §6b): one stream, combined streams, SUBSCRIBE / UNSUBSCRIBE /
LIST_SUBSCRIPTIONS, every subscribe acknowledged (even for a symbol that does not exist, as production does)."""

from __future__ import annotations

from services.simulator.userdata import UserData


class Market(UserData):
    """The ``/market`` connections and the mark prices pushed on them."""

    def _init_market(self) -> None:
        pass
