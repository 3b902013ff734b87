"""The user-data stream: a listen key kept alive on the WebSocket API, and a second connection that receives pushes.

PROTOCOL.md §1 and §6: ``userDataStream.start`` gives a key that lives 60 minutes unless pinged; the stream is read
from ``<base>/private/ws?listenKey=<key>&events=<E1>/<E2>/...`` naming every event the app reads. That is the one
form production delivers on: with the key as a path segment it accepts the handshake and then sends nothing, and
without ``events=`` it sends nothing either (production reports, 2026-05). The legacy ``/ws/<listenKey>`` was
retired on 2026-04-23. A key that dies (-1125, ``listenKeyExpired``, a refused handshake) is replaced; a dropped
stream reconnects with its own backoff, whatever the API connection is doing. Whether an open stream really delivers
is judged elsewhere, on evidence (:mod:`services.trust`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import websockets
from pydantic import ValidationError
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from services.backoff import Backoff
from services.client import WsApiClient
from services.errors import CredentialsRejected, ExchangeError, NetworkError, RequestRejected, because
from services.models import ListenKeyExpired, UserDataEvent, parse_user_data_event
from services.shapes import loads_exact
from services.tasks import cancel_and_wait

log = logging.getLogger("balance_tui.stream")

#: Ping the key well inside its 60-minute life (PROTOCOL.md §6 says every ≤ 30 min).
PING_EVERY = 25 * 60.0
#: Every event balance-tui reads, ``listenKeyExpired`` included: production delivers only the events named.
#: ``ORDER_TRADE_UPDATE`` for today's figures: how much of a fill's wallet change was realized PnL, how much fees.
EVENTS = ("ACCOUNT_UPDATE", "ORDER_TRADE_UPDATE", "MARGIN_CALL", "ACCOUNT_CONFIG_UPDATE", "listenKeyExpired")
LISTEN_KEY_GONE = -1125


@dataclass(frozen=True)
class StreamState:
    """The stream went up or down: ``state`` is ``connecting``, ``live`` or ``reconnecting``."""

    state: str
    detail: str = ""
    retry_in: float = 0.0


StreamItem = UserDataEvent | StreamState


class UserDataStream:
    """Yields user-data events and changes of the stream's state, until cancelled; never raises but for rejection."""

    def __init__(
        self,
        client: WsApiClient,
        base_url: str,
        *,
        ping_every: float = PING_EVERY,
        backoff: Backoff | None = None,
        max_frame_size: int = 1024 * 1024,
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.ping_every = ping_every
        self.backoff = backoff or Backoff(base=1.0, cap=60.0)
        self.max_frame_size = max_frame_size
        self.listen_key: str | None = None
        self.connections_opened = 0

    def url_for(self, listen_key: str) -> str:
        # The events are joined by "/" as the docs write them; the key is opaque, so it is quoted.
        return f"{self.base_url}/private/ws?listenKey={quote(listen_key, safe='')}&events={'/'.join(EVENTS)}"

    async def events(self) -> AsyncIterator[StreamItem]:
        clock = self.client.clock
        yield StreamState("connecting")
        while True:
            try:
                async for item in self._one_connection():
                    yield item
                detail = "the stream closed"
            except CredentialsRejected:
                raise  # the feed shows it; a stream cannot fix credentials
            except NetworkError as exc:
                # The API connection is down: its own backoff paces the next try.
                detail = str(exc)
                delay = max(exc.retry_in, self.backoff.base)
                log.info("user-data stream down (%s): again in %.1f s", detail, delay)
                yield StreamState("reconnecting", detail=detail, retry_in=delay)
                await clock.sleep(delay)
                continue
            except ExchangeError as exc:
                detail = str(exc)
            delay = self.backoff.next_delay()
            log.info("user-data stream down (%s): again in %.1f s", detail, delay)
            yield StreamState("reconnecting", detail=detail, retry_in=delay)
            await clock.sleep(delay)

    async def _one_connection(self) -> AsyncIterator[StreamItem]:
        key = await self.client.user_data_stream_start()
        self.listen_key = key
        try:
            ws = await websockets.connect(
                self.url_for(key), open_timeout=10, max_size=self.max_frame_size, ping_interval=60, ping_timeout=30
            )
        except InvalidStatus as exc:
            # A key the stream host does not know: the next round starts (and so gets) a fresh one.
            raise RequestRejected(f"the stream refused the listen key (HTTP {exc.response.status_code})") from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise RequestRejected(because("cannot open the user-data stream", exc)) from None
        self.connections_opened += 1
        keepalive = asyncio.create_task(self._keep_alive(ws), name="listen-key-keepalive")
        try:
            self.backoff.reset()
            yield StreamState("live")
            async for frame in ws:
                try:
                    event = parse_user_data_event(loads_exact(frame))
                except (ValueError, ValidationError) as exc:
                    log.warning("ignored a stream frame that is not a valid event: %s", _first_line(exc))
                    continue
                if event is None:
                    continue
                yield event
                if isinstance(event, ListenKeyExpired):
                    log.info("listen key expired: starting a new one")
                    self.listen_key = None
                    return
        except ConnectionClosed:
            pass
        finally:
            await cancel_and_wait([keepalive])
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)

    async def _keep_alive(self, ws: websockets.ClientConnection) -> None:
        while True:
            await self.client.clock.sleep(self.ping_every)
            try:
                await self.client.user_data_stream_ping()
            except RequestRejected as exc:
                if exc.code == LISTEN_KEY_GONE:
                    log.info("listen key gone (-1125): reconnecting with a new one")
                    self.listen_key = None
                    await ws.close(1000, "listen key gone")
                    return
                log.warning("listen key ping failed: %s", exc)
            except ExchangeError as exc:
                # The API connection is down; the key outlives a short outage, so try again next round.
                log.warning("listen key ping failed: %s", exc)

    async def close(self) -> None:
        """Tell the exchange the key is no longer needed (best effort: the app is on its way out)."""
        if self.listen_key is None:
            return
        self.listen_key = None
        with contextlib.suppress(ExchangeError, TimeoutError):
            await asyncio.wait_for(self.client.user_data_stream_stop(), 3)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
