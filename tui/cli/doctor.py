"""``balance-tui doctor``: one screen a user can paste into a bug report — which balance-tui, the config and data
paths and their permissions, the key's kind and audit, the clock offset, and each endpoint reachable or not. No
secret is ever printed: an API key shows as its first and last four characters."""

from __future__ import annotations

import asyncio
import os
import platform
import stat
from pathlib import Path

from services.endpoints import mask_key
from services.errors import ExchangeError, because
from services.settings import Settings, default_config_path
from tui.cli.common import EXIT_OK, Writer, app_version
from tui.wiring import Exchange, make_client, make_key_checker, open_exchange

CHECK_TIMEOUT = 5.0  # seconds for each endpoint: a doctor that hangs on a dead host helps nobody


def file_line(what: str, path: Path | None) -> str:
    """``what: path (mode 600 ✓)``; a file others can read is said so, as the settings refuse it."""
    if path is None:
        return f"{what}: none"
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return f"{what}: {path} (not found)"
    except OSError as exc:
        return f"{what}: {path} (cannot read: {exc.strerror})"
    private = os.name != "posix" or not mode & 0o077
    return f"{what}: {path} (mode {mode:o} {'✓' if private else '✗ readable by others: chmod 600'})"


async def run_doctor(settings: Settings, out: Writer) -> int:

    lines = [
        f"balance-tui {app_version()} · Python {platform.python_version()} · {platform.system()} {platform.machine()}",
        file_line("config file", Path(os.environ.get("BALANCE_TUI_CONFIG") or default_config_path())),
        f"data dir: {settings.history_dir()}",
        f"profile: {settings.profile or '(none)'}",
        file_line("private key file", settings.private_key_file) if settings.private_key_file else "",
        f"keyring: {_keyring_backend()}",
    ]
    async with open_exchange(settings, announce=None) as exchange:
        lines.append(f"exchange: {exchange.label} {exchange.ws_url}")
        credentials = exchange.credentials
        who = f"{mask_key(credentials.api_key)} ({credentials.signer.kind})" if credentials else "none"
        lines.append(f"API key: {who}")
        lines.extend(await _endpoints(settings, exchange))
    out.write("\n".join(line for line in lines if line) + "\n")
    return EXIT_OK


async def _endpoints(settings: Settings, exchange: Exchange) -> list[str]:
    lines = []
    async with make_client(settings, exchange) as client:
        try:
            await asyncio.wait_for(client.connect(), CHECK_TIMEOUT)
            offset = client.offset
            lines.append(f"WS API: reachable · clock offset {offset.ms:+d} ms (± {offset.uncertainty_ms} ms)")
        except (ExchangeError, TimeoutError) as exc:
            lines.append(because("WS API: NOT reachable", exc or "no answer in time"))
        lines.append(await _market(exchange.stream_url))
        audit = await make_key_checker(settings, exchange, client).check()
    lines.append(f"REST {exchange.rest_url or '(none)'}: {audit.summary()}")
    return lines


async def _market(stream_url: str) -> str:
    """The stream host answers: a ``/market`` connection opened and closed (free: no key, no weight)."""
    import websockets

    url = f"{stream_url.rstrip('/')}/market/stream?streams=btcusdt@markPrice@1s"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), websockets.connect(url, open_timeout=CHECK_TIMEOUT):
            pass
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        return f"stream host {stream_url}: NOT reachable ({type(exc).__name__})"
    return f"stream host {stream_url}: reachable"


def _keyring_backend() -> str:
    try:
        import keyring

        backend = keyring.get_keyring()
    except Exception as exc:  # a backend that cannot even be named is what this line is for
        return f"unusable ({type(exc).__name__})"
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    return f"{name} (none: keys set cannot store secrets here)" if "fail" in name else name
