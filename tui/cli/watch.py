"""``balance-tui watch``: one JSON line per snapshot, change of state, balance change and alert; and ``serve``, the
same without the lines (alerts, history, notifications, metrics), for a server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from typing import Any

from services.alerts import AlertEvent
from services.events import (
    BalanceChangeEvent,
    FeedEvent,
    KeyAuditEvent,
    MarginCallEvent,
    SnapshotEvent,
    StatusEvent,
    TradeEvent,
)
from services.formatting import mask_json
from services.history import HistoryError, HistoryRecorder
from services.models import LinkState
from services.session import Session
from services.settings import ConfigError, Settings
from tui.cli.common import EXIT_CREDENTIALS, EXIT_OK, EXIT_PORTFOLIO_MARGIN, OutputError, Writer
from tui.cli.snapshot import JSON_SCHEMA, snapshot_json
from tui.notify import Notifier
from tui.wiring import (
    Exchange,
    alerts_from,
    make_client,
    make_feed,
    make_reach,
    open_exchange,
    open_history,
)

log = logging.getLogger("balance_tui.serve")

# -- watch --------------------------------------------------------------------------------------------------------


async def run_watch(settings: Settings, *, duration: float | None, out: Writer | None, private: bool = False) -> int:
    """One JSON line per snapshot, per change of state and per alert fired or resolved, until ``duration``. With no
    ``out`` (``serve``) no lines: the session, the history, notifications and metrics alone, said in the log.
    ``private`` masks every amount of the lines (``watch --private``)."""

    def line(document: dict[str, Any]) -> str:
        return json.dumps(mask_json(document) if private else document) + "\n"

    alerts = alerts_from(settings)
    notifier = Notifier(settings.notify)
    async with (
        open_exchange(settings, announce=sys.stderr if out is not None else None) as exchange,
        make_client(settings, exchange) as client,
    ):
        feed = make_feed(settings, exchange, client)
        session = Session(alerts, client.clock, _history_or_none(settings, exchange), on_history_off=_say)
        reach = make_reach(settings, exchange, session, client.clock, on_trouble=_trouble)
        try:
            reach.start()
        except OSError as exc:
            raise ConfigError(str(exc)) from None

        def said(raised: list[AlertEvent]) -> None:
            reach.alerts(raised)
            for alert in raised:
                if out is not None:
                    out.write(line({**alert.json_line(), "schema": JSON_SCHEMA}))
                    out.flush()
                else:
                    log.warning("alert %s %s%s", alert.rule, alert.state, f" at {alert.value}" if alert.value else "")
                notifier.alert(alert)

        async def clock_alerts() -> None:  # stale and silent need no event to become true
            while True:
                await client.clock.sleep(1.0)
                try:
                    said(session.check())
                except (BrokenPipeError, OutputError):
                    return  # the output is gone: the main loop meets it at its next line and says so

        background = [asyncio.create_task(clock_alerts()), asyncio.create_task(reach.run())]

        async def pump() -> int:
            # Closed here, whatever ends the loop (a duration, a signal, a reader gone): the feed's tasks stop and the
            # listen key is stopped while the client is still open, not later by the garbage collector.
            async with contextlib.aclosing(feed.events()) as events:
                async for event in events:
                    raised = session.apply(event)
                    if out is not None:
                        out.write(line(_event_line(event, exchange, session)))
                        out.flush()
                    elif isinstance(event, StatusEvent):
                        log.info("link %s, stream %s %s", event.status.state, event.status.stream, event.status.detail)
                    elif isinstance(event, KeyAuditEvent) and event.audit.warnings():
                        log.warning("the API key %s: use a read-only, IP-restricted key",
                                    ", ".join(event.audit.warnings()))  # fmt: skip
                    said(raised)
                    if isinstance(event, StatusEvent) and event.status.state is LinkState.CREDENTIALS_REJECTED:
                        return EXIT_CREDENTIALS
                    if isinstance(event, StatusEvent) and event.status.state is LinkState.UNSUPPORTED:
                        if out is None:
                            log.error("%s", event.status.detail)
                        return EXIT_PORTFOLIO_MARGIN
            return EXIT_OK

        try:
            return await asyncio.wait_for(pump(), duration) if duration is not None else await pump()
        except TimeoutError:
            return EXIT_OK
        finally:
            for task in background:
                task.cancel()
            await reach.close()


def _event_line(event: FeedEvent, exchange: Exchange, session: Session) -> dict[str, Any]:
    if isinstance(event, BalanceChangeEvent):
        return {"type": "change", "schema": JSON_SCHEMA, **event.change.json_dict()}
    if isinstance(event, TradeEvent):
        return {"type": "trade", "schema": JSON_SCHEMA, **event.trade.json_dict()}
    if isinstance(event, KeyAuditEvent):
        return {"type": "key", "schema": JSON_SCHEMA, **event.audit.json_dict()}
    if isinstance(event, SnapshotEvent):
        # Today's figures by reason (exact strings), counted since the session's first snapshot; the key's audit.
        return {
            "type": "snapshot",
            **snapshot_json(event.snapshot, exchange, key=session.key_audit),
            "today": session.today_at().json_dict(),
        }
    if isinstance(event, MarginCallEvent):
        return {
            "type": "margin_call",
            "schema": JSON_SCHEMA,
            **event.margin_call.model_dump(mode="json", by_alias=False),
        }
    return {"type": "status", "schema": JSON_SCHEMA, **event.status.model_dump(mode="json")}


def _say(line: str) -> None:
    print(f"balance-tui: {line}", file=sys.stderr)


def _trouble(what: str | None) -> None:
    if what is not None:
        _say(what)  # once, until notifications get through again (the log says when)


def _history_or_none(settings: Settings, exchange: Exchange) -> HistoryRecorder | None:
    try:
        return open_history(settings, exchange)
    except HistoryError as exc:
        _say(f"running without history: {exc}")
        return None
