"""What balance-tui does when it fails on something unexpected: one line on stderr saying what and where the report is.

A traceback is written to the log file when there is one, else to a file of its own in the data dir, created 0600,
and never with a frame's local variables: one of them could be a signer, the settings or a raw reply (Textual's
crash screen shows them all). The process then ends with ``exits.CRASH``.
"""

from __future__ import annotations

import datetime
import logging
import os
import traceback
from pathlib import Path

from services.files import private_opener

log = logging.getLogger("balance_tui.crash")


def where(error: BaseException) -> str:
    """``TypeError in widgets/balance_table.py:512``: the kind of failure and the last line of ours it passed."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if "/site-packages/" not in f.filename and "/lib/python" not in f.filename] or frames
    if not ours:
        return type(error).__name__
    frame = ours[-1]
    parts = Path(frame.filename).parts
    short = "/".join(parts[-2:]) if len(parts) >= 2 else frame.filename
    return f"{type(error).__name__} in {short}:{frame.lineno}"


def report(error: BaseException, *, log_file: Path | None, data_dir: Path) -> str:
    """Write the report (no locals) and return the sentence that says where it is."""
    text = "".join(traceback.format_exception(error))  # the standard form: file, line, code, never a local
    if log_file is not None and logging.getLogger().handlers:
        log.error("balance-tui stopped on an unexpected error:\n%s", text)
        return f"the full report is in the log file {log_file}"
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = data_dir / f"crash-{stamp}-{os.getpid()}.txt"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", opener=private_opener) as out:
            out.write(text)
    except OSError as exc:
        return f"no report could be written ({exc.strerror or exc}): run with --log-file to keep one"
    return f"the full report is in {path}"


def one_line(error: BaseException, *, log_file: Path | None, data_dir: Path) -> str:
    """The line for stderr: what happened, where, and where the report is."""
    return f"balance-tui: stopped by an unexpected error ({where(error)}); {report(error, log_file=log_file, data_dir=data_dir)}"
