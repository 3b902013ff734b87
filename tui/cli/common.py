"""What every command shares: exit codes, where a command prints, the one-line errors, the arguments."""

from __future__ import annotations

import argparse
import io
import logging
import math
from pathlib import Path
from typing import Any, NoReturn, TextIO

from pydantic import SecretStr

from services.settings import Settings, load_settings
from tui import exits

# Exit codes live in tui/exits.py (one table for commands, --help and the README); named here as the commands use them.
EXIT_OK = exits.OK
EXIT_CONFIG = exits.CONFIG
EXIT_CREDENTIALS = exits.CREDENTIALS
EXIT_NETWORK = exits.NETWORK
EXIT_HISTORY = exits.HISTORY
EXIT_PORTFOLIO_MARGIN = exits.PORTFOLIO_MARGIN
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


def _common_options(*, default: Any) -> OneLineParser:
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
    group.add_argument(
        "--rest-url",
        default=default,
        help="REST host asked for the key's permissions (default https://api.binance.com; the testnet has none)",
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
        help="alert when RULE holds, e.g. 'available:USDT<500', 'margin_ratio>0.8', 'liq_distance<0.05', 'adl>=4', "
        "'today_pnl<-500' (repeatable)",
    )
    group.add_argument(
        "--notify", action="store_true", default=default, help="desktop notifications for alerts, where there is one"
    )
    group.add_argument(
        "--notify-url",
        dest="notify_urls" if default is None else "notify_urls_after",
        action="append",
        default=default,
        metavar="URL",
        help="send alerts (and the daily summary) to this apprise URL, e.g. ntfy://… or json://host/path "
        "(repeatable; it holds a token: the config file, kept private, is the better place)",
    )
    group.add_argument(
        "--metrics",
        default=default,
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (dashboard, watch, serve; host 127.0.0.1 if none)",
    )
    group.add_argument(
        "--private",
        action="store_true",
        default=default,
        help="privacy mode: every amount masked, for a shared screen (h toggles it; snapshot and watch mask their "
        "output only with this option, not with private = true)",
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
    parser.add_argument("--version", action="version", version=f"%(prog)s {app_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("dashboard", parents=[common], help="the dashboard (the default)")
    snapshot = commands.add_parser("snapshot", parents=[common], help="fetch the balances once, print them, exit")
    snapshot.add_argument("--json", action="store_true", help="print JSON with every amount as the exchange's string")
    watch = commands.add_parser("watch", parents=[common], help="print every new snapshot and state change")
    watch.add_argument("--jsonl", action="store_true", help="one JSON object per line (the only format so far)")
    watch.add_argument("--duration", type=positive_seconds, help="stop after this many seconds")
    serve = commands.add_parser(
        "serve", parents=[common], help="headless: the feed, alerts, history, notifications and metrics, until stopped"
    )
    serve.add_argument("--duration", type=positive_seconds, help="stop after this many seconds")
    history = commands.add_parser(
        "history", parents=[common], help="the recorded balance changes (never connects: the options pick the account)"
    )
    history.add_argument("--since", default="24h", help="24h, 7d, 30m, or a date (2026-11-30); default 24h")
    history.add_argument("--asset", help="only this asset")
    history.add_argument("--reason", help="only this reason (FUNDING_FEE, ORDER, …)")
    history.add_argument(
        "--summary",
        action="store_true",
        help="each day's change by reason, as the daily summary says it (with --json/--csv: totals per day, asset, "
        "reason and symbol)",
    )
    form = history.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="JSON, every amount an exact decimal string")
    form.add_argument("--csv", action="store_true", help="CSV, every amount an exact decimal string")
    commands.add_parser(
        "doctor",
        parents=[common],
        help="paths, permissions, the key's audit, the clock, each endpoint: for a bug report",
    )
    keys = commands.add_parser(
        "keys", help="secrets in the OS keyring: keys set | delete | list (per --profile; never on the command line)"
    )
    keys.add_argument("action", choices=("set", "delete", "list"), help="store, delete, or list (names only)")
    keys.add_argument("--profile", help="the profile the secret belongs to (default: 'default')")
    keys.add_argument(
        "--passphrase", action="store_true", help="store the PEM private key's passphrase rather than an API secret"
    )
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


def app_version() -> str:
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
    "metrics",
    "ws_url",
    "stream_url",
    "rest_url",
    "testnet",
    "demo",
    "interval",
    "stream",
    "recv_window",
    "profile",
    "log_file",
    "private",
)


def settings_from(args: argparse.Namespace) -> Settings:
    cli = {name: getattr(args, name) for name in SETTING_OPTIONS if getattr(args, name, None) is not None}
    extra_alerts = [*cli.pop("alerts", []), *(getattr(args, "alerts_after", None) or [])]
    extra_urls = [*(getattr(args, "notify_urls", None) or []), *(getattr(args, "notify_urls_after", None) or [])]
    settings = load_settings(cli, config_path=getattr(args, "config", None))
    if extra_alerts:  # --alert adds to the rules of the config file rather than replacing them
        settings.alerts = [*settings.alerts, *extra_alerts]
    if extra_urls:  # so do --notify-url destinations to the config file's
        settings.notify_urls = [*settings.notify_urls, *(SecretStr(url) for url in extra_urls)]
    return settings
