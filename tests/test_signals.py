"""Every way out leaves the terminal as it was: SIGTERM and SIGHUP on the dashboard in a real pseudo-terminal,
on ``watch`` and ``snapshot``; and ``watch --jsonl | head -1`` ends quietly."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.simulator import ExchangeSimulator
from tests.helpers import CLI, TEST_API_KEY, TEST_SECRET, Terminal, clean_env, until
from tui import exits

# What Textual writes to leave the screen as it found it: alternate screen off, cursor shown, mouse reporting off.
RESTORE = (b"\x1b[?1049l", b"\x1b[?25h", b"\x1b[?1000l")


@pytest.fixture
async def live_sim() -> AsyncIterator[ExchangeSimulator]:
    simulator = ExchangeSimulator()  # real clock: the app in another process stamps with the real time
    simulator.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    simulator.start_ticker(1.0)
    async with simulator:
        yield simulator


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
async def test_a_signal_to_the_dashboard_restores_the_terminal_and_stops_the_listen_key(
    live_sim: ExchangeSimulator, tmp_path: Path, signum: int, code: int
) -> None:
    env = clean_env(tmp_path, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
    term = Terminal([*CLI, "--ws-url", live_sim.ws_url], env)
    try:
        await until(lambda: b"push" in term.output and bool(live_sim.user_data.listen_keys), limit=30)
        term.process.send_signal(signum)
        assert await term.finish() == code
    finally:
        if term.process.poll() is None:
            term.process.kill()
    tail = bytes(term.output[-4000:])
    for sequence in RESTORE:
        assert sequence in tail, sequence
    assert b"Traceback" not in term.output
    assert "userDataStream.stop" in [method for _, method in live_sim.requests]
    assert not live_sim.user_data.listen_keys


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
async def test_a_signal_ends_watch_cleanly(live_sim: ExchangeSimulator, tmp_path: Path, signum: int) -> None:
    env = clean_env(tmp_path, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
    process = await asyncio.create_subprocess_exec(
        *CLI, "watch", "--jsonl", "--ws-url", live_sim.ws_url, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await until(lambda: bool(live_sim.user_data.listen_keys), limit=30)
    process.send_signal(signum)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 128 + signum
    assert b"Traceback" not in err
    assert "userDataStream.stop" in [method for _, method in live_sim.requests]


async def test_watch_into_a_closed_pipe_ends_quietly(live_sim: ExchangeSimulator, tmp_path: Path) -> None:
    env = clean_env(tmp_path, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
    command = " ".join([*CLI, "watch", "--jsonl", "--ws-url", live_sim.ws_url]) + " | head -1"
    process = await asyncio.create_subprocess_shell(
        command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert len(out.splitlines()) == 1
    assert err == b"", err.decode()


@pytest.fixture
async def busy_sim() -> AsyncIterator[ExchangeSimulator]:
    simulator = ExchangeSimulator()
    simulator.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    simulator.start_ticker(0.05)
    async with simulator:
        yield simulator


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
async def test_a_dashboard_whose_terminal_vanished_ends_within_five_seconds_of_a_signal(
    busy_sim: ExchangeSimulator, tmp_path: Path, signum: int, code: int
) -> None:
    """Its terminal server killed: writes to the terminal fail from then on. Shutdown must not wait on the terminal
    (Textual's writer thread died on the first failed write, its queue of 30 writes filled, and the loop waited on
    it for good), and the signal must end it."""
    env = clean_env(tmp_path, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
    term = Terminal([*CLI, "--ws-url", busy_sim.ws_url], env)
    try:
        await until(lambda: term.shows("LIVE") and bool(busy_sim.user_data.listen_keys), limit=30)
        term.close()  # the terminal is gone
        # Marks twenty times a second: a paint each, into the void, until far more than 30 writes are queued.
        await until(lambda: busy_sim.market.mark_frames_sent >= 150, limit=30)
        term.process.send_signal(signum)
        started = asyncio.get_running_loop().time()
        returned = await asyncio.to_thread(term.wait, 5.5)
        took = asyncio.get_running_loop().time() - started
    finally:
        term.kill()
    assert returned in (code, exits.HANGUP), returned  # its own signal's code, or the hang-up it met first
    assert took < 5.0, took
