"""Messages to wherever the trader is: alerts and the daily summary, through apprise (Telegram, Discord, Slack, ntfy,
Matrix, email, JSON/form webhooks and ~100 more, each by a URL).

Delivery never holds up the screen or the feed: :meth:`Deliveries.send` puts the message on a bounded queue and
returns; one task sends them in order, each on a thread of its own pool (apprise is blocking; a receiver that hangs
holds a thread of that pool, never the event loop, nor the loop's default executor that name lookups use), retries
with backoff, and gives up on a message after the last try. A failure is said once (``on_trouble``), then nothing more
until a message gets through again (``on_trouble(None)``). The URLs hold tokens: they are secrets, never logged or
said; a destination is named by its number and scheme only ("destination 2 (tgram)").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from services.clock import Clock

log = logging.getLogger("balance_tui.delivery")

QUEUE_LENGTH = 100  # messages waiting; past it the newest are dropped (and said once)
ATTEMPTS = 4  # tries per message
FIRST_RETRY = 2.0  # seconds; doubled each time (2, 4, 8)
SEND_TIMEOUT = 15.0  # seconds to wait for one try before counting it failed (the thread may go on a while)


class DeliveryError(ValueError):
    """A notification URL that apprise does not know: said without the URL (it holds a token)."""


@dataclass(frozen=True)
class Message:
    title: str
    body: str


class Sender(Protocol):
    """Sends one message to every destination; True when all took it. Blocking: run on a thread."""

    def __call__(self, title: str, body: str) -> bool: ...


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "?"


def apprise_sender(urls: Sequence[str]) -> Sender:
    """An apprise object holding every URL; raises :class:`DeliveryError` naming the one it cannot read by number."""
    import apprise  # about 0.1 s to import: only when there are destinations

    # apprise logs what it sends to, URL and all, at INFO and WARNING: none of it reaches balance-tui's log.
    logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)
    destinations = apprise.Apprise()
    for number, url in enumerate(urls, 1):
        if not destinations.add(url):
            raise DeliveryError(
                f"notification URL {number} of {len(urls)} ({scheme_of(url)}://…) is not one apprise can send to: "
                "see https://github.com/caronc/apprise/wiki for the forms"
            )

    def send(title: str, body: str) -> bool:
        return bool(destinations.notify(title=title, body=body))

    return send


class Deliveries:
    """A queue of messages and the task that sends them (:meth:`run`, until cancelled)."""

    def __init__(
        self,
        sender: Sender,
        *,
        clock: Clock,
        count: int,
        on_trouble: Callable[[str | None], None] | None = None,
        attempts: int = ATTEMPTS,
        first_retry: float = FIRST_RETRY,
        timeout: float = SEND_TIMEOUT,
    ) -> None:
        self.sender = sender
        self.clock = clock
        self.count = count  # destinations, for what is said
        self.on_trouble = on_trouble
        self.attempts = attempts
        self.first_retry = first_retry
        self.timeout = timeout
        self.queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=QUEUE_LENGTH)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._troubled = False
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="balance-tui-notify")

    def send(self, title: str, body: str) -> None:
        """Queue a message; never waits. A full queue drops it (said once, with the count in the log)."""
        try:
            self.queue.put_nowait(Message(title, body))
        except asyncio.QueueFull:
            self.dropped += 1
            self._trouble(f"notifications: {QUEUE_LENGTH} waiting, newer ones dropped ({self.dropped})")

    async def run(self) -> None:
        try:
            while True:
                message = await self.queue.get()
                await self._deliver(message)
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def drain(self, timeout: float) -> None:
        """Give what is queued up to ``timeout`` seconds to go (on the way out)."""
        deadline = self.clock.monotonic() + timeout
        while not self.queue.empty() and self.clock.monotonic() < deadline:
            await self.clock.sleep(0.05)

    async def _deliver(self, message: Message) -> None:
        delay = self.first_retry
        for attempt in range(1, self.attempts + 1):
            if await self._try(message):
                self.sent += 1
                if self._troubled:
                    self._troubled = False
                    log.info("notifications are getting through again")
                    if self.on_trouble is not None:
                        self.on_trouble(None)
                return
            if attempt < self.attempts:
                await self.clock.sleep(delay)
                delay *= 2
        self.failed += 1
        self._trouble(f"notifications failing: {message.title!r} not delivered after {self.attempts} tries")

    async def _try(self, message: Message) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.run_in_executor(self._pool, self.sender, message.title, message.body)
        try:
            return bool(await asyncio.wait_for(future, self.timeout))
        except TimeoutError:
            return False
        except Exception as exc:  # a destination's library failing in its own way: a failed try, said by type only
            log.debug("a notification try failed: %s", type(exc).__name__)
            return False

    def _trouble(self, what: str) -> None:
        if self._troubled:
            return
        self._troubled = True
        log.warning("%s (%d destination%s)", what, self.count, "s" if self.count != 1 else "")
        if self.on_trouble is not None:
            self.on_trouble(what)
