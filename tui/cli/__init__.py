"""The ``balance-tui`` command: the dashboard, and ``snapshot``, ``watch`` (and ``serve``), ``history`` and ``sim``.

Arguments in, settings out, one command run; which exchange and how the client and feed are built is
:mod:`tui.wiring`'s job. Exit codes are :mod:`tui.exits`'s table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from services.files import private_opener
from services.settings import ConfigError, Settings, default_data_dir
from tui import crash, exits
from tui.cli.common import (
    EXIT_BROKEN_PIPE,
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    EXIT_OUTPUT,
    CommandError,
    Output,
    OutputError,
    build_parser,
    settings_from,
)
from tui.cli.history import run_history
from tui.cli.sim import run_sim
from tui.cli.snapshot import run_snapshot
from tui.cli.watch import run_watch
from tui.wiring import (
    TERMINATING_SIGNALS,
    alerts_from,
    check_reach,
)

# -- main ---------------------------------------------------------------------------------------------------------


def configure_logging(log_file: Path | None, *, stderr: bool = False) -> None:
    if log_file is None and stderr:  # serve: a server's log is its stderr (journald keeps it)
        to_stderr = logging.StreamHandler(sys.stderr)
        to_stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(to_stderr)
        logging.getLogger().setLevel(logging.INFO)
        logging.getLogger("websockets").setLevel(logging.WARNING)
        return
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
        if command == "keys":  # no settings: it reads no config and connects nowhere
            from tui.cli.keys import run_keys

            return run_keys(args, out)
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
    check_reach(settings)  # so is a notification URL apprise cannot read (the URL itself never said)
    configure_logging(settings.log_file, stderr=command == "serve")
    for warning in settings.warnings:
        print(f"balance-tui: warning: {warning}", file=sys.stderr)
    if command == "doctor":
        from tui.cli.doctor import run_doctor

        return run_until_signalled(run_doctor(settings, out))
    if command != "history" and not settings.use_simulator and settings.credentials() is None:
        raise ConfigError("no credentials for this exchange: set BINANCE_API_KEY and a secret or key file")
    if command == "history":
        return run_history(settings, args, out)
    # Headless output is masked only when asked on the command line: private = true in the config file is about
    # the screen, and a script reading snapshot --json must not find its numbers gone because of it.
    private = bool(getattr(args, "private", None))
    if command == "snapshot":
        return run_until_signalled(run_snapshot(settings, as_json=args.json, out=out, private=private))
    if command == "watch":
        return run_until_signalled(run_watch(settings, duration=args.duration, out=out, private=private))
    if command == "serve":
        return run_until_signalled(run_watch(settings, duration=args.duration, out=None))
    from tui.checks import unknown_theme

    if problem := unknown_theme(settings.theme):
        raise ConfigError(problem)
    from tui.app import run_dashboard

    return run_dashboard(settings)


def _silence_stdout() -> None:
    """Point stdout at nothing: Python flushes it again at exit, and would complain of the same failure."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
