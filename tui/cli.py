"""The ``balance-tui`` command: the dashboard, ``snapshot``, ``watch`` and ``sim``.

Arguments in, settings out, one command run; which exchange and how the client and feed are built is
:mod:`tui.wiring`'s job. Exit codes are :mod:`tui.exits`'s table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import math
import os
import sys
from collections.abc import Coroutine, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn, TextIO

from services.alerts import AlertEvent
from services.errors import CredentialsRejected, ExchangeError, RateLimited, because
from services.events import BalanceChangeEvent, FeedEvent, MarginCallEvent, SnapshotEvent, StatusEvent
from services.feed import AccountFeed
from services.files import private_opener
from services.formatting import format_amount
from services.history import HistoryError, HistoryRecorder, HistoryStore, summarize
from services.models import AccountSnapshot, LinkState
from services.session import Session
from services.settings import ConfigError, Settings, default_data_dir, load_settings
from services.signing import KeyFileError, load_private_key_file
from tui import crash, exits
from tui.notify import Notifier
from tui.wiring import (
    TERMINATING_SIGNALS,
    Exchange,
    alerts_from,
    history_account,
    make_client,
    make_feed,
    open_exchange,
    open_history,
)

# Exit codes live in tui/exits.py (one table for commands, --help and the README); named here as the commands use them.
EXIT_OK = exits.OK
EXIT_CONFIG = exits.CONFIG
EXIT_CREDENTIALS = exits.CREDENTIALS
EXIT_NETWORK = exits.NETWORK
EXIT_HISTORY = exits.HISTORY
EXIT_OUTPUT = exits.OUTPUT
EXIT_INTERRUPTED = exits.INTERRUPTED
EXIT_BROKEN_PIPE = exits.BROKEN_PIPE


Writer = TextIO | io.TextIOBase  # where a command prints: sys.stdout, or it wrapped in Output


class OutputError(Exception):
    """What a command prints could not be written (a full disk): said in one line, exit ``EXIT_OUTPUT``."""


class Output(io.TextIOBase):
    """A command's standard output: a write or flush that fails is an :class:`OutputError`, not a traceback.

    A reader gone away stays a BrokenPipeError: that ends a command quietly, as Unix tools do.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(exc.strerror or str(exc)) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(exc.strerror or str(exc)) from None

    def fileno(self) -> int:
        return self._stream.fileno()


class OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line (what is wrong and where to look), exit 2: no usage block to read through."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"{self.prog}: {message} (see {self.prog} --help)\n")


def positive_seconds(text: str) -> float:
    """A number of seconds greater than zero (not NaN, not infinite)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds greater than 0")
    return value


log = logging.getLogger("balance_tui")


class CommandError(Exception):
    """Ends a command with a message on stderr and an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# -- arguments ----------------------------------------------------------------------------------------------------


def _common_options(*, default: Any) -> argparse.ArgumentParser:
    """The options every command but ``sim`` takes, defined once.

    They are accepted before the subcommand and after it, and mean the same in both places. The subcommands' copy
    defaults to ``SUPPRESS``: argparse would otherwise write the subcommand's defaults over what was given before
    it, and ``balance-tui --testnet snapshot`` would quietly connect to production.
    """
    common = OneLineParser(add_help=False)
    group = common.add_argument_group("connection and settings")
    group.add_argument(
        "--ws-url", default=default, help="WebSocket API URL (default: production, or testnet with --testnet)"
    )
    group.add_argument(
        "--stream-url", default=default, help="user-data stream base URL, e.g. wss://fstream.binance.com"
    )
    group.add_argument("--testnet", action="store_true", default=default, help="use Binance's futures testnet")
    group.add_argument("--demo", action="store_true", default=default, help="use the embedded exchange simulator")
    group.add_argument("--interval", type=float, default=default, help="seconds between refreshes (default 2)")
    group.add_argument(
        "--no-stream",
        dest="stream",
        action="store_false",
        default=default,
        help="do not listen to the user-data stream (poll only)",
    )
    group.add_argument(
        "--recv-window", type=int, default=default, help="recvWindow in ms for signed requests (at most 60000)"
    )
    group.add_argument("--profile", default=default, help="profile of the config file to use")
    group.add_argument("--config", type=Path, default=default, help="config file (default: the platform config dir)")
    group.add_argument(
        "--log-file", type=Path, default=default, help="write a log of connection events here (no secrets)"
    )
    group.add_argument(
        "--alert",
        # After the subcommand, argparse would replace the list given before it: collected apart, then joined.
        dest="alerts" if default is None else "alerts_after",
        action="append",
        default=default,
        metavar="RULE",
        help="alert when RULE holds, e.g. 'available:USDT<500' or 'margin_ratio>0.8' (repeatable)",
    )
    group.add_argument(
        "--notify", action="store_true", default=default, help="desktop notifications for alerts, where there is one"
    )
    group.add_argument(
        "--data-dir", type=Path, default=default, help="where the history is kept (default: the platform data dir)"
    )
    group.add_argument(
        "--no-history", dest="history", action="store_false", default=default, help="keep no history of changes"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options(default=argparse.SUPPRESS)
    parser = OneLineParser(
        prog="balance-tui",
        description="Balances of a Binance USDⓈ-M Futures account, live, exact, in the terminal. "
        "With no credentials it runs a demo on the embedded exchange simulator.",
        epilog="Credentials: BINANCE_API_KEY with BINANCE_API_SECRET (HMAC) or BINANCE_PRIVATE_KEY_FILE "
        "(+ BINANCE_PRIVATE_KEY_PASSPHRASE) for Ed25519/RSA keys, or a profile of the config file. "
        "Use a read-only key. " + exits.described(),
        parents=[_common_options(default=None)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("dashboard", parents=[common], help="the dashboard (the default)")
    snapshot = commands.add_parser("snapshot", parents=[common], help="fetch the balances once, print them, exit")
    snapshot.add_argument("--json", action="store_true", help="print JSON with every amount as the exchange's string")
    watch = commands.add_parser("watch", parents=[common], help="print every new snapshot and state change")
    watch.add_argument("--jsonl", action="store_true", help="one JSON object per line (the only format so far)")
    watch.add_argument("--duration", type=positive_seconds, help="stop after this many seconds")
    history = commands.add_parser(
        "history", parents=[common], help="the recorded balance changes (never connects: the options pick the account)"
    )
    history.add_argument("--since", default="24h", help="24h, 7d, 30m, or a date (2026-11-30); default 24h")
    history.add_argument("--asset", help="only this asset")
    history.add_argument("--reason", help="only this reason (FUNDING_FEE, ORDER, …)")
    history.add_argument("--summary", action="store_true", help="totals per day, asset, reason and symbol")
    form = history.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="JSON, every amount an exact decimal string")
    form.add_argument("--csv", action="store_true", help="CSV, every amount an exact decimal string")
    sim = commands.add_parser("sim", help="run the exchange simulator alone, for this app or your own bots")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    sim.add_argument("--port-file", type=Path, help="write the port chosen to this file once listening")
    sim.add_argument("--multi-assets", action="store_true", help="start the account in Multi-Assets mode")
    sim.add_argument(
        "--weight-limit", type=int, default=2400, help="request weight per minute before 429 (default 2400)"
    )
    sim.add_argument(
        "--v1-weight",
        type=int,
        choices=(5, 10),
        default=10,
        help="what account.status/account.balance cost: 10 as Binance's change log says (default), 5 as their pages",
    )
    sim.add_argument(
        "--still", action="store_true", help="an account that does not move (no positions, no marks, no pushes)"
    )
    sim.add_argument(
        "--no-pushes",
        action="store_true",
        help="positions held and marks moving every second, but no balance change pushed (the demo pushes one "
        "every 5 s)",
    )
    sim.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="API_KEY=PEM_FILE",
        help="accept this Ed25519 or RSA key (the PEM of its public or private key); repeatable",
    )
    sim.add_argument("--hmac", action="append", default=[], metavar="API_KEY=SECRET", help="accept this HMAC key")
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("balance-tui")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


SETTING_OPTIONS = (
    "data_dir",
    "history",
    "alerts",
    "notify",
    "ws_url",
    "stream_url",
    "testnet",
    "demo",
    "interval",
    "stream",
    "recv_window",
    "profile",
    "log_file",
)


def settings_from(args: argparse.Namespace) -> Settings:
    cli = {name: getattr(args, name) for name in SETTING_OPTIONS if getattr(args, name, None) is not None}
    extra_alerts = [*cli.pop("alerts", []), *(getattr(args, "alerts_after", None) or [])]
    settings = load_settings(cli, config_path=getattr(args, "config", None))
    if extra_alerts:  # --alert adds to the rules of the config file rather than replacing them
        settings.alerts = [*settings.alerts, *extra_alerts]
    return settings


# -- snapshot -----------------------------------------------------------------------------------------------------


SNAPSHOT_ATTEMPTS = 5


async def fetch_once(feed: AccountFeed, attempts: int = SNAPSHOT_ATTEMPTS) -> AccountSnapshot:
    """One snapshot with every call of a full refresh answered, retrying what can be retried a few times; raises
    CommandError with the exit code. What an attempt brought is kept (the account core holds it): the next asks only
    for what is missing, at once when the last brought something (a poor link answering part of each)."""
    last: ExchangeError | None = None
    for attempt in range(1, attempts + 1):
        try:
            return await feed.refresh()
        except CredentialsRejected as exc:
            raise CommandError(because("credentials rejected", exc), EXIT_CREDENTIALS) from None
        except RateLimited as exc:
            raise CommandError(because("rate limited by the exchange", exc), EXIT_NETWORK) from None
        except ExchangeError as exc:
            last = exc
            if not exc.retryable or attempt == attempts:
                break
            if not feed.applied:
                await asyncio.sleep(getattr(exc, "retry_in", 0.0) or feed.backoff.next_delay())
    raise CommandError(because("could not fetch balances", last), EXIT_NETWORK)


#: The version of the JSON that ``snapshot --json`` and ``watch --jsonl`` print; raised when a field changes meaning
#: or goes away (new fields may appear at any time, as on the exchange).
JSON_SCHEMA = 3


def snapshot_json(snapshot: AccountSnapshot, exchange: Exchange) -> dict[str, Any]:
    return {"schema": JSON_SCHEMA, "endpoint": exchange.ws_url, "mode": exchange.label, **snapshot.json_dict()}


def snapshot_table(snapshot: AccountSnapshot) -> str:
    """A plain-text table of the snapshot, for a terminal or a log."""
    headers = ("Asset", "Wallet", "Cross wallet", "Unrealized PnL", "Available", "Max withdraw", "Margin")
    rows = [
        (
            row.asset,
            format_amount(row.wallet_balance, 8),
            format_amount(row.cross_wallet_balance, 8),
            format_amount(row.cross_un_pnl, 8, signed=True),
            format_amount(row.available_balance, 8),
            format_amount(row.max_withdraw_amount, 8),
            {True: "yes", False: "no", None: "—"}[row.margin_available],
        )
        for row in snapshot.balances.values()
    ]
    widths = [max(len(line[i]) for line in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in [headers, *rows]
    ]
    if snapshot.totals is not None:
        t = snapshot.totals
        lines.append("")
        lines.append(
            f"Totals  wallet {format_amount(t.total_wallet_balance, 8)}  "
            f"unrealized {format_amount(t.total_unrealized_profit, 8, signed=True)}  "
            f"margin balance {format_amount(t.total_margin_balance, 8)}  "
            f"available {format_amount(t.available_balance, 8)}"
        )
    mode = {True: "on", False: "off", None: "unknown"}[snapshot.multi_assets_margin]
    lines.append(f"Multi-Assets mode {mode}")
    return "\n".join(lines)


async def run_snapshot(settings: Settings, *, as_json: bool, out: Writer) -> int:
    async with open_exchange(settings) as exchange, make_client(settings, exchange) as client:
        snapshot = await fetch_once(AccountFeed(client, interval=settings.interval))  # one poll: no stream needed
        if as_json:
            out.write(json.dumps(snapshot_json(snapshot, exchange), indent=2) + "\n")
        else:
            out.write(snapshot_table(snapshot) + "\n")
    return EXIT_OK


# -- watch --------------------------------------------------------------------------------------------------------


async def run_watch(settings: Settings, *, duration: float | None, out: Writer) -> int:
    """One JSON line per snapshot, per change of state and per alert fired or resolved, until ``duration``."""
    alerts = alerts_from(settings)
    notifier = Notifier(settings.notify)
    async with open_exchange(settings) as exchange, make_client(settings, exchange) as client:
        feed = make_feed(settings, exchange, client)
        session = Session(alerts, client.clock, _history_or_none(settings, exchange), on_history_off=_say)

        def said(raised: list[AlertEvent]) -> None:
            for alert in raised:
                out.write(json.dumps({**alert.json_line(), "schema": JSON_SCHEMA}) + "\n")
                out.flush()
                notifier.alert(alert)

        async def clock_alerts() -> None:  # stale and silent need no event to become true
            while True:
                await client.clock.sleep(1.0)
                try:
                    said(session.check())
                except (BrokenPipeError, OutputError):
                    return  # the output is gone: the main loop meets it at its next line and says so

        ticker = asyncio.create_task(clock_alerts())

        async def pump() -> int:
            # Closed here, whatever ends the loop (a duration, a signal, a reader gone): the feed's tasks stop and the
            # listen key is stopped while the client is still open, not later by the garbage collector.
            async with contextlib.aclosing(feed.events()) as events:
                async for event in events:
                    raised = session.apply(event)
                    out.write(json.dumps(_event_line(event, exchange)) + "\n")
                    out.flush()
                    said(raised)
                    if isinstance(event, StatusEvent) and event.status.state is LinkState.CREDENTIALS_REJECTED:
                        return EXIT_CREDENTIALS
            return EXIT_OK

        try:
            return await asyncio.wait_for(pump(), duration) if duration is not None else await pump()
        except TimeoutError:
            return EXIT_OK
        finally:
            ticker.cancel()


def _event_line(event: FeedEvent, exchange: Exchange) -> dict[str, Any]:
    if isinstance(event, BalanceChangeEvent):
        return {"type": "change", "schema": JSON_SCHEMA, **event.change.json_dict()}
    if isinstance(event, SnapshotEvent):
        return {"type": "snapshot", **snapshot_json(event.snapshot, exchange)}
    if isinstance(event, MarginCallEvent):
        return {
            "type": "margin_call",
            "schema": JSON_SCHEMA,
            **event.margin_call.model_dump(mode="json", by_alias=False),
        }
    return {"type": "status", "schema": JSON_SCHEMA, **event.status.model_dump(mode="json")}


def _say(line: str) -> None:
    print(f"balance-tui: {line}", file=sys.stderr)


def _history_or_none(settings: Settings, exchange: Exchange) -> HistoryRecorder | None:
    try:
        return open_history(settings, exchange)
    except HistoryError as exc:
        _say(f"running without history: {exc}")
        return None


# -- history ------------------------------------------------------------------------------------------------------


def parse_since(text: str, now_ms: int) -> int:
    """``30m``, ``24h``, ``7d`` before now, or a date (UTC midnight); raises ConfigError."""
    import datetime

    units = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
    if text[-1:] in units and text[:-1].isdigit():
        return now_ms - int(text[:-1]) * units[text[-1]]
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--since {text!r}: give 30m, 24h, 7d, or a date like 2026-11-30") from None
    return int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp() * 1000)


def run_history(settings: Settings, args: argparse.Namespace, out: Writer) -> int:
    """Print the recorded changes of the account the options pick; never connects."""
    import time

    since = parse_since(args.since, time.time_ns() // 1_000_000)
    try:
        store = HistoryStore(settings.history_dir())
    except HistoryError as exc:
        raise CommandError(str(exc), EXIT_HISTORY) from None
    demo = settings.use_simulator
    account = history_account(settings, settings.endpoint(), demo=demo)
    try:
        changes = store.changes(account, since_ms=since, asset=args.asset, reason=args.reason)
    except HistoryError as exc:
        raise CommandError(str(exc), EXIT_HISTORY) from None
    finally:
        store.close()
    rows: list[dict[str, Any]] = summarize(changes) if args.summary else [c.json_dict() for c in changes]
    if args.json:
        out.write(json.dumps({"schema": JSON_SCHEMA, "account": account, "rows": rows}, indent=2) + "\n")
    elif args.csv:
        import csv

        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["at_ms"])
        writer.writeheader()
        writer.writerows(rows)
    else:
        out.write(_history_table(rows, summary=args.summary) + "\n")
    return EXIT_OK


def _delta_text(delta: str | None) -> str:
    return format_amount(Decimal(delta), 8, signed=True) if delta is not None else "—"  # not known: first seen


def _history_table(rows: list[dict[str, Any]], *, summary: bool) -> str:
    from datetime import datetime

    if not rows:
        return "no changes recorded for this account in that time"
    if summary:
        lines = [f"{'day':<10}  {'asset':<6}  {'reason':<16}  {'symbol':<10}  {'total':>20}  count"]
        lines += [
            f"{r['day']:<10}  {r['asset']:<6}  {r['reason']:<16}  {(r['symbol'] or ''):<10}  "
            f"{format_amount(Decimal(r['total']), 8, signed=True):>20}  {r['count']}"
            for r in rows
        ]
        return "\n".join(lines)
    lines = [f"{'time':<19}  {'asset':<6}  {'delta':>18}  {'wallet':>22}  {'reason':<16}  symbol"]
    for r in rows:
        when = datetime.fromtimestamp(r["at_ms"] / 1000).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(
            f"{when:<19}  {r['asset']:<6}  {_delta_text(r['delta']):>18}  "
            f"{format_amount(Decimal(r['new_wallet']), 8):>22}  {r['reason']:<16}  {r['symbol'] or ''}"
        )
    return "\n".join(lines)


# -- sim ----------------------------------------------------------------------------------------------------------


async def run_sim(args: argparse.Namespace, out: Writer) -> int:
    from services.simulator import ExchangeSimulator, SimulatedAccount

    simulator = ExchangeSimulator(
        host=args.host,
        port=args.port,
        account=SimulatedAccount(multi_assets=args.multi_assets, positions=not args.still),
        weight_limit=args.weight_limit,
        v1_weight=args.v1_weight,
    )
    for spec in args.hmac:
        api_key, _, secret = spec.partition("=")
        if not api_key or not secret:
            raise CommandError("--hmac takes API_KEY=SECRET", EXIT_CONFIG)
        simulator.add_hmac_key(api_key, secret)
    for spec in args.key:
        api_key, _, file = spec.partition("=")
        if not api_key or not file:
            raise CommandError("--key takes API_KEY=PEM_FILE", EXIT_CONFIG)
        simulator.add_public_key(_public_key(Path(file)), api_key)
    demo_key, demo_secret = simulator.add_hmac_key()
    await simulator.start()
    if not args.still:
        simulator.start_ticker(1.0, push_every=0 if args.no_pushes else 5)
    out.write(
        f"exchange simulator listening on {simulator.ws_url}\n"
        f"  user-data stream base: {simulator.stream_url}   server time: {simulator.time_url}\n"
        f"  demo HMAC key (simulator only, not a real credential):\n"
        f"    BINANCE_API_KEY={demo_key}\n    BINANCE_API_SECRET={demo_secret}\n"
    )
    if sys.stdin is not None and sys.stdin.isatty():
        out.write("  type help for the fault console (drop, silent on, ban 120, revoke, expire-keys, push, …)\n")
    out.flush()
    if args.port_file is not None:
        args.port_file.write_text(f"{simulator.port}\n")
    try:
        await _console(simulator, out)
        await asyncio.Event().wait()  # stdin closed: keep serving until interrupted
    finally:
        await simulator.stop()
    return EXIT_OK


async def _console(simulator: Any, out: Writer) -> None:
    """Read fault commands from stdin, one a line, until it closes (without stdin: return at once)."""
    if sys.stdin is None:
        return
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        reply = await simulator.command(line)
        if reply:
            out.write(reply + "\n")
            out.flush()


def _public_key(path: Path) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}", EXIT_CONFIG) from None
    if b"PRIVATE KEY" in pem:
        try:
            return load_private_key_file(path).public_key()
        except KeyFileError as exc:
            raise CommandError(str(exc), EXIT_CONFIG) from None
    try:
        return load_pem_public_key(pem)
    except ValueError:
        raise CommandError(f"{path}: not a PEM public key", EXIT_CONFIG) from None


# -- main ---------------------------------------------------------------------------------------------------------


def configure_logging(log_file: Path | None) -> None:
    if log_file is None:
        logging.getLogger().addHandler(logging.NullHandler())
        return
    from logging.handlers import RotatingFileHandler

    class PrivateRotatingFileHandler(RotatingFileHandler):
        """Log files are created 0600: they name the endpoint and the account's figures."""

        def _open(self) -> Any:
            return open(self.baseFilename, self.mode, encoding=self.encoding, opener=private_opener)

    if log_file.is_dir():
        raise ConfigError(
            f"--log-file {log_file} is a directory: give a file name in it, e.g. {log_file / 'balance-tui.log'}"
        )
    try:
        handler = PrivateRotatingFileHandler(log_file, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    except OSError as exc:
        reason = "its directory does not exist" if isinstance(exc, FileNotFoundError) else exc.strerror or str(exc)
        raise ConfigError(f"cannot write the log file {log_file}: {reason}") from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def run_until_signalled(command: Coroutine[Any, Any, int]) -> int:
    """Run a headless command; SIGTERM or SIGHUP end it cleanly (listen key stopped) with 128 + the signal."""

    async def runner() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        caught: list[int] = []

        def stop(signum: int) -> None:
            caught.append(signum)
            task.cancel()

        for signum in TERMINATING_SIGNALS:
            loop.add_signal_handler(signum, stop, signum)
        try:
            return await command
        except asyncio.CancelledError:
            if caught:
                return 128 + caught[0]
            raise

    return asyncio.run(runner())


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(0o077)  # whatever balance-tui writes (a log, a screenshot) is its owner's alone
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already said in one line
        return int(exc.code or 0)
    command = args.command or "dashboard"
    out = Output(sys.stdout)
    settings: Settings | None = None
    try:
        settings = settings_from(args) if command != "sim" else None
        code = _run(command, args, settings, out)
        out.flush()  # a full disk is met here, not in the interpreter's own flush at exit (a traceback, code 120)
        return code
    except ConfigError as exc:
        print(f"balance-tui: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except CommandError as exc:
        print(f"balance-tui: {exc}", file=sys.stderr)
        return exc.code
    except OutputError as exc:
        print(f"balance-tui: cannot write the output: {exc}", file=sys.stderr)
        _silence_stdout()
        return EXIT_OUTPUT
    except BrokenPipeError:
        # The reader went away (`watch --jsonl | head -1`): end quietly, as Unix tools do.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: one line and a report without locals, never a traceback in a trader's face
        log_file = settings.log_file if settings is not None else None
        data_dir = settings.history_dir() if settings is not None else default_data_dir()
        print(crash.one_line(exc, log_file=log_file, data_dir=data_dir), file=sys.stderr)
        return exits.CRASH


def _run(command: str, args: argparse.Namespace, settings: Settings | None, out: Output) -> int:
    if settings is None:
        return run_until_signalled(run_sim(args, out))
    alerts_from(settings)  # a bad rule is one line and exit 2, before anything connects
    configure_logging(settings.log_file)
    for warning in settings.warnings:
        print(f"balance-tui: warning: {warning}", file=sys.stderr)
    if command != "history" and not settings.use_simulator and settings.credentials() is None:
        raise ConfigError("no credentials for this exchange: set BINANCE_API_KEY and a secret or key file")
    if command == "history":
        return run_history(settings, args, out)
    if command == "snapshot":
        return run_until_signalled(run_snapshot(settings, as_json=args.json, out=out))
    if command == "watch":
        return run_until_signalled(run_watch(settings, duration=args.duration, out=out))
    from tui.checks import unknown_theme

    if problem := unknown_theme(settings.theme):
        raise ConfigError(problem)
    from tui.app import run_dashboard

    return run_dashboard(settings)


def _silence_stdout() -> None:
    """Point stdout at nothing: Python flushes it again at exit, and would complain of the same failure."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
