"""Exit codes, one table: what each command returns, what ``--help`` lists and the README documents."""

from __future__ import annotations

import signal

OK = 0
CONFIG = 2  # usage or configuration: always one line on stderr
CREDENTIALS = 3  # the exchange rejected the credentials
NETWORK = 4  # network or rate limit, after retries
HISTORY = 5  # the history store cannot be read (corrupt, newer schema, unreadable)
PORTFOLIO_MARGIN = 6  # the account is a Portfolio Margin account: not supported yet (its endpoints are others)
KEYRING = 7  # keys: no keyring backend on this machine, or it refused
CRASH = 70  # balance-tui itself failed (sysexits' EX_SOFTWARE): one line says where the report is
OUTPUT = 74  # the output could not be written (a full disk, a device gone): sysexits' EX_IOERR
HANGUP = 128 + signal.SIGHUP  # 129: the terminal closed
INTERRUPTED = 128 + signal.SIGINT  # 130: ctrl+c, or kill -INT
BROKEN_PIPE = 128 + signal.SIGPIPE  # 141: the reader of the output went away (`watch --jsonl | head -1`)
TERMINATED = 128 + signal.SIGTERM  # 143: kill, SIGTERM

MEANINGS: tuple[tuple[int, str], ...] = (
    (OK, "ok"),
    (CONFIG, "usage or configuration"),
    (CREDENTIALS, "credentials rejected"),
    (NETWORK, "network or rate limit after retries"),
    (HISTORY, "the history store cannot be read"),
    (PORTFOLIO_MARGIN, "a Portfolio Margin account (not supported yet)"),
    (KEYRING, "no usable keyring (keys)"),
    (CRASH, "balance-tui failed (the report's path is said)"),
    (OUTPUT, "the output cannot be written"),
    (HANGUP, "the terminal closed"),
    (INTERRUPTED, "interrupted (ctrl+c)"),
    (BROKEN_PIPE, "the output's reader went away"),
    (TERMINATED, "terminated (SIGTERM)"),
)


def described() -> str:
    """Every exit code in one sentence, for ``--help``."""
    return "Exit codes: " + ", ".join(f"{code} {meaning}" for code, meaning in MEANINGS) + "."
