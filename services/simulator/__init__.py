"""An exchange simulator: the futures WebSocket API, the user-data stream, mark prices and the server-time endpoint
on loopback. It runs in process (tests, ``balance-tui --demo``) or alone (``balance-tui sim``), and traders may point
their own bots at it.

One module a job: the account (``account``), the server and its request loop (``server``), weights and bans
(``weights``), keys and signatures (``auth``), the user-data stream (``userdata``), mark prices (``market``), fault
modes (``faults``) and the fault console (``console``). It shares nothing with the client it tests but the signing
primitives and the clock: its weights, limits and shapes are the exchange's, written down here.
"""

from services.simulator.account import SimAsset, SimulatedAccount, amount
from services.simulator.faults import Faults
from services.simulator.server import ExchangeSimulator

__all__ = ["ExchangeSimulator", "Faults", "SimAsset", "SimulatedAccount", "amount"]
