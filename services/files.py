"""Files that hold or may hold secrets: refused when others can read them, created so that they cannot."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotPrivate(Exception):
    """A file holding a secret can be read by group or others. The message says the ``chmod`` that fixes it."""


def require_private(path: Path, what: str = "holds a secret") -> None:
    """Refuse ``path`` if group or others may read or write it, as ssh does for a private key (POSIX only)."""
    if os.name != "posix":
        return
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise NotPrivate(
            f"{path} {what} and is readable by others (mode {stat.S_IMODE(mode):o}): run  chmod 600 {path}"
        )


def private_opener(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open` that creates files readable by their owner only (0600)."""
    return os.open(path, flags, 0o600)
