"""Secrets stay secret, the app only reads, and a trader can attach a log to a bug report without worry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pydantic import SecretStr

from services.endpoints import Credentials
from services.settings import Settings
from services.signing import HmacSigner, load_private_key
from services.simulator import ExchangeSimulator
from services.weight import DOCUMENTED_WEIGHTS
from tests.helpers import TEST_API_KEY, TEST_SECRET, Watch, clean_env, pem, run_cli

ROOT = Path(__file__).resolve().parent.parent
READ_ONLY_METHODS = {
    "v2/account.position",
    "account.balance",
    "v2/account.balance",
    "account.status",
    "v2/account.status",
    "session.logon",
    "session.status",
    "session.logout",
    "userDataStream.start",
    "userDataStream.ping",
    "userDataStream.stop",
}


def test_no_secret_in_snapshots_or_screenshots() -> None:
    pictures = [*ROOT.joinpath("tests", "__snapshots__").rglob("*.svg"), *ROOT.joinpath("screenshots").glob("*.svg")]
    assert pictures
    for picture in pictures:
        assert TEST_SECRET not in picture.read_text(), picture


def test_reprs_and_dumps_hide_secrets(tmp_path: Path) -> None:
    settings = Settings(api_key=SecretStr(TEST_API_KEY), api_secret=SecretStr(TEST_SECRET))
    assert TEST_SECRET not in repr(settings)
    assert TEST_SECRET not in str(settings.model_dump())
    assert TEST_SECRET not in settings.model_dump_json()
    credentials = Credentials(TEST_API_KEY, HmacSigner(TEST_SECRET))
    assert TEST_SECRET not in repr(credentials) and TEST_API_KEY not in repr(credentials)
    key = ed25519.Ed25519PrivateKey.generate()
    body = pem(key).decode().splitlines()[1]
    assert body not in repr(load_private_key(pem(key)))


def test_the_client_only_knows_read_only_methods() -> None:
    assert set(DOCUMENTED_WEIGHTS) == READ_ONLY_METHODS
    sources = [path.read_text() for path in (ROOT / "services" / "client").glob("*.py")]
    strings = {
        node.value
        for source in sources
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    assert not {s for s in strings if s.startswith(("order.", "algoOrder.", "account.position", "v2/order"))}


async def test_a_session_of_the_dashboard_sends_only_reads(home: Path) -> None:
    simulator = ExchangeSimulator()
    simulator.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    async with simulator:
        env = clean_env(home, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
        watch = await Watch.start("--ws-url", simulator.ws_url, env=env)
        await watch.until(lambda: watch.stream_connected() and bool(watch.of_type("snapshot")))
        code, err = await watch.stop()
        assert code == 143, err
    assert {method for _, method in simulator.requests} <= READ_ONLY_METHODS


async def test_log_file_has_connection_events_errors_and_weight_but_no_secret(home: Path) -> None:
    simulator = ExchangeSimulator()
    simulator.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    log_file = home / "balance-tui.log"
    async with simulator:
        env = clean_env(home, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
        # Polling only, every 2 s: the fault below meets the next poll within seconds.
        watch = await Watch.start("--ws-url", simulator.ws_url, "--no-stream", "--log-file", str(log_file), env=env)
        await watch.until(lambda: bool(watch.of_type("snapshot")))
        simulator.faults.close_next = 1  # an error worth a line
        await watch.until(lambda: any(line["state"] == "reconnecting" for line in watch.of_type("status")))
        await watch.until(lambda: watch.of_type("status")[-1]["state"] == "live")
        code, err = await watch.stop()
    assert code == 143, err
    text = log_file.read_text()
    assert "connected to ws://" in text
    assert "weight " in text and "this app" in text
    assert "state live" in text
    assert TEST_SECRET not in text
    assert TEST_API_KEY not in text  # not a secret, but no need to write it down either


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "config").mkdir()
    return tmp_path


async def test_wrong_passphrase_and_wrong_key_type_are_one_line_exit_2(home: Path) -> None:
    encrypted = home / "ed25519.pem"
    encrypted.write_bytes(pem(ed25519.Ed25519PrivateKey.generate(), passphrase="right"))
    encrypted.chmod(0o600)  # a private key others can read is refused, as ssh does
    env = clean_env(
        home,
        BINANCE_API_KEY="k",
        BINANCE_PRIVATE_KEY_FILE=str(encrypted),
        BINANCE_PRIVATE_KEY_PASSPHRASE="hunter2-guess",
    )
    code, _, err = await run_cli("snapshot", env=env)
    assert code == 2 and "passphrase is wrong" in err and "hunter2-guess" not in err
    ec_key = home / "ec.pem"
    ec_key.write_bytes(pem(ec.generate_private_key(ec.SECP256R1())))  # type: ignore[arg-type]
    ec_key.chmod(0o600)  # a private key others can read is refused, as ssh does
    code, _, err = await run_cli(
        "snapshot", env=clean_env(home, BINANCE_API_KEY="k", BINANCE_PRIVATE_KEY_FILE=str(ec_key))
    )
    assert code == 2 and "unsupported key type" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
