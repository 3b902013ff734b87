"""Shared fixtures: a virtual clock, a simulator on loopback, keys of every kind."""

from __future__ import annotations

import logging
import os
import random
import sys
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from services.backoff import Backoff
from services.client import WsApiClient
from services.clock import VirtualClock
from services.endpoints import Credentials
from services.signing import Ed25519Signer, HmacSigner, RsaSigner
from services.simulator import ExchangeSimulator
from tests.helpers import TEST_API_KEY, TEST_SECRET


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def sim(clock: VirtualClock) -> AsyncIterator[ExchangeSimulator]:
    simulator = ExchangeSimulator(clock=clock)
    simulator.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    async with simulator:
        yield simulator


@pytest.fixture
def hmac_credentials() -> Credentials:
    return Credentials(TEST_API_KEY, HmacSigner(TEST_SECRET))


@pytest.fixture
def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@pytest.fixture
def ed25519_credentials(sim: ExchangeSimulator, ed25519_key: ed25519.Ed25519PrivateKey) -> Credentials:
    api_key = sim.add_public_key(ed25519_key.public_key(), "bt-ed25519-key-abcdefghijklmnopqrstuvwxyz0123456789")
    return Credentials(api_key, Ed25519Signer(ed25519_key))


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def rsa_credentials(sim: ExchangeSimulator, rsa_key: rsa.RSAPrivateKey) -> Credentials:
    api_key = sim.add_public_key(rsa_key.public_key(), "bt-rsa-key-abcdefghijklmnopqrstuvwxyz0123456789")
    return Credentials(api_key, RsaSigner(rsa_key))


@pytest.fixture
async def client(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> AsyncIterator[WsApiClient]:
    async with WsApiClient(
        sim.ws_url, hmac_credentials, clock=clock, request_timeout=2.0, backoff=Backoff(rng=random.Random(1))
    ) as ws_client:
        yield ws_client


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The caller's environment never changes a result: no BALANCE_TUI_* setting, no BINANCE_* credential, and
    the config and data dirs (the history) are the test's own, never the machine's."""
    for name in list(os.environ):
        if name.startswith(("BALANCE_TUI_", "BINANCE_")):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    # Never the developer's real keyring: none at all, unless a test picks the file backend (keyrings.alt).
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))


@pytest.fixture(autouse=True, scope="session")
def _utc() -> None:
    # Clock times on screen are local: pin the zone so pictures and assertions are the same everywhere.

    os.environ["TZ"] = "UTC"
    time.tzset()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception as exc:  # a record that cannot be formatted is itself worth failing on
            self.lines.append(f"<unformattable record: {exc}>")


@pytest.fixture(autouse=True)
def no_secret_leaks(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Every test runs with the known test secret in play: it must reach no output and no log line.

    Logging is captured at DEBUG for the test's duration, websockets' frame dumps included, so a secret that
    reached any logger at any level fails the test that leaked it.
    """
    handler = _Collect()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    out, err = capfd.readouterr()
    sys.stdout.write(out)
    sys.stderr.write(err)
    for where, text in (("stdout", out), ("stderr", err), ("logs", "\n".join(handler.lines))):
        assert TEST_SECRET not in text, f"the test secret leaked to {where}"
