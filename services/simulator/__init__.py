"""An exchange simulator: the futures WebSocket API, the user-data stream, mark prices and the server-time endpoint
on loopback. It runs in process (tests, ``balance-tui --demo``) or alone (``balance-tui sim``), and traders may point
their own bots at it.

The exchange is composed, not inherited: ``server.ExchangeSimulator`` *has* its parts, each in a module of its own and
each handed only the parts it needs: the venue everything shares (clock, account, faults: ``core``), the IP's request
weight and bans (``weights``), keys, signatures and sessions (``auth``), the user-data stream (``userdata``), mark
prices (``market``), the WebSocket API's request loop (``api``); the simulated account (``account``), fault modes
(``faults``) and the fault console (``console``). It shares nothing with the client it tests but the signing
primitives and the clock: its weights, limits and shapes are the exchange's, written down here.
"""

from services.simulator.account import SimAsset, SimulatedAccount, amount
from services.simulator.faults import Faults
from services.simulator.server import ExchangeSimulator

__all__ = ["ExchangeSimulator", "Faults", "SimAsset", "SimulatedAccount", "amount"]
