"""The futures WebSocket API client: connection and reader (``link``), what replies say (``replies``), the weight
they cost (``meter``), the 429/418 gate (``gate``), the clock (``clocksync``), the typed methods (``methods``), and the
client that holds them together (``api``)."""

from services.client.api import WsApiClient
from services.client.clocksync import Offset
from services.client.replies import Fetched, Reply

__all__ = ["Fetched", "Offset", "Reply", "WsApiClient"]
