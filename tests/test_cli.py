"""The headless CLI as a trader runs it: real processes, the simulator on loopback, exact amounts, exit codes."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from services.formatting import cut
from services.simulator import ExchangeSimulator
from tests.helpers import CLI, TEST_API_KEY, TEST_SECRET, Watch, clean_env, pem, run_cli, until

AMOUNTS = {
    "wallet_balance": "walletBalance",
    "cross_wallet_balance": "crossWalletBalance",
    "cross_un_pnl": "crossUnPnl",
    "available_balance": "availableBalance",
    "max_withdraw_amount": "maxWithdrawAmount",
}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "config").mkdir()
    return tmp_path


@pytest.fixture
async def live_sim() -> AsyncIterator[ExchangeSimulator]:
    simulator = ExchangeSimulator()  # real clock: the CLI in another process stamps with the real time
    simulator.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    async with simulator:
        yield simulator


def assert_exact(output: dict[str, Any], sent: dict[str, Any]) -> None:
    rows = output["balances"]
    assert list(rows) == [asset["asset"] for asset in sent["assets"]]
    for asset in sent["assets"]:
        for ours, theirs in AMOUNTS.items():
            assert rows[asset["asset"]][ours] == asset[theirs], (asset["asset"], ours)
    assert output["totals"]["total_wallet_balance"] == sent["totalWalletBalance"]


async def test_snapshot_json_is_character_for_character_what_the_server_sent(
    live_sim: ExchangeSimulator, home: Path
) -> None:
    env = clean_env(home, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
    code, out, err = await run_cli("snapshot", "--json", "--ws-url", live_sim.ws_url, env=env)
    assert code == 0, err
    output = json.loads(out)
    assert output["schema"] == 3
    assert output["mode"] == "CUSTOM"  # a URL of its own, not Binance production
    assert_exact(output, live_sim.last_result["account.status"])
    assert TEST_SECRET not in out + err
    # Single-asset mode: account.status said no margin flag; account.balance says it for every asset.
    assert all("marginAvailable" not in row for row in live_sim.last_result["account.status"]["assets"])
    flags = {row["asset"]: row["marginAvailable"] for row in live_sim.last_result["account.balance"]}
    assert {asset: row["margin_available"] for asset, row in output["balances"].items()} == flags
    assert set(flags.values()) == {True, False}


async def test_snapshot_json_in_multi_assets_mode_gives_each_asset_its_available_as_sent(
    live_sim: ExchangeSimulator, home: Path
) -> None:
    live_sim.account.multi_assets = True
    env = clean_env(home, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
    code, out, err = await run_cli("snapshot", "--json", "--ws-url", live_sim.ws_url, env=env)
    assert code == 0, err
    output = json.loads(out)
    assert_exact(output, live_sim.last_result["account.status"])
    btc = output["balances"]["BTC"]
    sent = next(a for a in live_sim.last_result["account.status"]["assets"] if a["asset"] == "BTC")
    assert btc["available_balance"] == sent["availableBalance"]  # BTC, as sent: the account's, counted in BTC
    assert btc["available_scope"] == "account"
    assert output["totals"]["available_balance"] == live_sim.last_result["account.status"]["availableBalance"]
    assert output["schema"] == 3


async def test_snapshot_with_an_ed25519_pem_key_logs_on(live_sim: ExchangeSimulator, home: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    api_key = live_sim.add_public_key(key.public_key(), "cli-ed25519-key-0123456789abcdefghijklmnopqrstu")
    key_file = home / "key.pem"
    key_file.write_bytes(pem(key, passphrase="pass phrase"))
    key_file.chmod(0o600)  # a private key others can read is refused, as ssh does
    env = clean_env(
        home,
        BINANCE_API_KEY=api_key,
        BINANCE_PRIVATE_KEY_FILE=str(key_file),
        BINANCE_PRIVATE_KEY_PASSPHRASE="pass phrase",
    )
    code, out, err = await run_cli("snapshot", "--json", "--ws-url", live_sim.ws_url, env=env)
    assert code == 0, err
    assert_exact(json.loads(out), live_sim.last_result["account.status"])
    methods = [method for _, method in live_sim.requests]
    assert methods[:3] == ["session.status", "session.logon", "account.status"]
    assert "signature" not in live_sim.last_params  # sent on the logged-on session


async def test_snapshot_table(live_sim: ExchangeSimulator, home: Path) -> None:
    env = clean_env(home, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
    code, out, _ = await run_cli("snapshot", "--ws-url", live_sim.ws_url, env=env)
    assert code == 0
    assert out.splitlines()[0].split()[:2] == ["Asset", "Wallet"]
    assert "122,607.35137903" in out
    assert "Multi-Assets mode off" in out


async def test_standalone_simulator_with_a_port_file(home: Path) -> None:
    port_file = home / "port"
    sim = await asyncio.create_subprocess_exec(
        *CLI, "sim", "--port-file", str(port_file), env=clean_env(home), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert sim.stdout is not None
        banner = [(await asyncio.wait_for(sim.stdout.readline(), 30)).decode() for _ in range(5)]
        keys = dict(line.strip().split("=", 1) for line in banner if line.strip().startswith("BINANCE_"))
        await until(lambda: port_file.exists() and bool(port_file.read_text().strip()))
        port = int(port_file.read_text())
        env = clean_env(home, **keys)
        code, out, err = await run_cli("snapshot", "--json", "--ws-url", f"ws://127.0.0.1:{port}/ws-fapi/v1", env=env)
        assert code == 0, err
        output = json.loads(out)
        assert output["balances"]["USDT"]["wallet_balance"] == "122607.35137903"
        assert set(output["balances"]) >= {"USDT", "USDC", "BTC", "ETH", "BNB"}
    finally:
        sim.terminate()
        await sim.wait()


async def test_demo_mode_says_so(home: Path) -> None:
    code, out, err = await run_cli("snapshot", "--json", env=clean_env(home))
    assert code == 0, err
    assert "embedded exchange simulator" in err
    assert json.loads(out)["mode"] == "DEMO"


async def test_watch_jsonl_prints_states_and_snapshots(home: Path) -> None:
    code, out, err = await run_cli("watch", "--jsonl", "--duration", "2.5", "--interval", "1", env=clean_env(home))
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["type"] == "status" and lines[0]["state"] == "connecting"
    statuses = [line for line in lines if line["type"] == "status"]
    states = [line["state"] for line in statuses]
    assert "live" in states
    assert states.count("connecting") == 1  # each change of state, once
    pairs = [(line["state"], line["stream"], line["stream_detail"]) for line in statuses]
    assert len(pairs) == len(set(pairs))
    # an open stream is said to be open, not live, until something shows it delivers
    assert any(line["stream"] == "unproven" and "nothing has shown yet" in line["stream_detail"] for line in statuses)
    assert sum(line["type"] == "snapshot" for line in lines) >= 1


async def test_rejected_credentials_exit_3(live_sim: ExchangeSimulator, home: Path) -> None:
    env = clean_env(home, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET="wrong-secret")
    code, _, err = await run_cli("snapshot", "--ws-url", live_sim.ws_url, env=env)
    assert code == 3
    assert "credentials rejected" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


async def test_unreachable_exchange_exits_4(home: Path) -> None:
    env = clean_env(home, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
    code, _, err = await run_cli("snapshot", "--ws-url", "ws://127.0.0.1:9/ws-fapi/v1", env=env)
    assert code == 4
    assert "could not fetch balances" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "env_extra", "message"),
    [
        ((), {"BINANCE_API_KEY": "k"}, "no secret"),
        ((), {"BINANCE_API_SECRET": "s"}, "no API key"),
        (("--ws-url", "http://example.invalid"), {}, "ws-url"),
        (("--recv-window", "70000"), {}, "recv-window"),
        (("--interval", "0"), {}, "interval"),
        (("--interval", "-3"), {}, "interval"),
        (("--profile", "nope"), {}, "nope"),
        ((), {"BINANCE_API_KEY": "k", "BINANCE_PRIVATE_KEY_FILE": "/nonexistent/key.pem"}, "cannot read"),
        (("--ws-url", "ws://127.0.0.1:9/ws-fapi/v1"), {}, "no credentials"),
    ],
)
async def test_bad_configuration_is_one_line_and_exit_2(
    home: Path, args: tuple[str, ...], env_extra: dict[str, str], message: str
) -> None:
    code, _, err = await run_cli("snapshot", *args, env=clean_env(home, **env_extra))
    assert code == 2, err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


async def test_bad_toml_and_wrong_key_type(home: Path) -> None:
    config = home / "bad.toml"
    config.write_text("interval = [unclosed\n")
    code, _, err = await run_cli("snapshot", "--config", str(config), env=clean_env(home))
    assert code == 2 and "not valid TOML" in err
    not_a_key = home / "not-a-key.pem"
    not_a_key.write_text("hello\n")
    not_a_key.chmod(0o600)  # a private key others can read is refused, as ssh does
    env = clean_env(home, BINANCE_API_KEY="k", BINANCE_PRIVATE_KEY_FILE=str(not_a_key))
    code, _, err = await run_cli("snapshot", env=env)
    assert code == 2 and "not a PEM private key" in err


async def test_a_readable_config_holding_a_secret_is_refused(home: Path) -> None:
    config = home / "config.toml"
    config.write_text(f'[profiles.main]\napi_key = "{TEST_API_KEY}"\napi_secret = "{TEST_SECRET}"\n')
    config.chmod(0o644)
    code, _, err = await run_cli("snapshot", "--config", str(config), "--profile", "main", env=clean_env(home))
    assert code == 2
    assert f"chmod 600 {config}" in err
    assert TEST_SECRET not in err


async def test_profiles_and_precedence(live_sim: ExchangeSimulator, home: Path) -> None:
    config = home / "config.toml"
    config.write_text(
        f'profile = "main"\ninterval = 9\n[profiles.main]\napi_key = "{TEST_API_KEY}"\n'
        f'api_secret = "{TEST_SECRET}"\nws_url = "ws://127.0.0.1:9/ws-fapi/v1"\n'
    )
    config.chmod(0o600)
    env = clean_env(home, BALANCE_TUI_WS_URL=live_sim.ws_url)  # env beats the file
    code, out, err = await run_cli("snapshot", "--json", "--config", str(config), env=env)
    assert code == 0, err
    assert json.loads(out)["endpoint"] == live_sim.ws_url
    # and the command line beats the environment
    code, _, err = await run_cli(
        "snapshot", "--config", str(config), "--ws-url", "ws://127.0.0.1:9/ws-fapi/v1", env=env
    )
    assert code == 4


async def test_help_mentions_no_secret(home: Path) -> None:
    code, out, _ = await run_cli("--help", env=clean_env(home, BINANCE_API_SECRET=TEST_SECRET))
    assert code == 0
    assert "read-only" in out and TEST_SECRET not in out


async def test_watch_reports_every_pushed_change_in_order(live_sim: ExchangeSimulator, home: Path) -> None:
    env = clean_env(home, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
    process = await asyncio.create_subprocess_exec(
        *CLI, "watch", "--jsonl", "--ws-url", live_sim.ws_url, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[dict[str, Any]] = []

    async def read_until(predicate: Any) -> None:
        while not predicate():
            raw = await asyncio.wait_for(process.stdout.readline(), 30)  # type: ignore[union-attr]
            assert raw, "watch ended early"
            lines.append(json.loads(raw))

    def connected() -> bool:
        streams = [line["stream"] for line in lines if line["type"] == "status"]
        return bool(streams) and streams[-1] in ("unproven", "live")

    async def push_some(count: int) -> None:
        for _ in range(count):  # back to back, as a busy account's fills come
            pushed.append((await live_sim.push_balance_change("USDT", "1.25"))["a"]["B"][0]["wb"])
        last = pushed[-1]
        await read_until(
            lambda: any(
                line["type"] == "snapshot" and line["balances"]["USDT"]["wallet_balance"] == last for line in lines
            )
        )

    pushed: list[str] = []
    try:
        await read_until(connected)
        await push_some(15)
        # the stream drops: it comes back by itself, and pushes keep arriving with no key press
        assert live_sim.drop_streams() == 1
        await read_until(lambda: [ln["stream"] for ln in lines if ln["type"] == "status"][-1] == "reconnecting")
        await read_until(connected)
        await push_some(3)
        # the key expires: a new one, a new stream, and pushes again
        await live_sim.expire_listen_keys()
        await read_until(lambda: [ln["stream"] for ln in lines if ln["type"] == "status"][-1] == "reconnecting")
        await read_until(connected)
        await push_some(3)
    finally:
        process.terminate()
        await process.wait()
    seen = [
        line["balances"]["USDT"]["wallet_balance"]
        for line in lines
        if line["type"] == "snapshot" and line["cause"] == "push"
    ]
    assert seen == pushed  # each change, once, in order, nothing lost


def long_amounts(document: Any, where: str = "") -> list[str]:
    """Every amount in a JSON document with more than 8 decimals, or that reads as a negative zero."""
    if isinstance(document, dict):
        return [bad for key, value in document.items() for bad in long_amounts(value, f"{where}.{key}")]
    if isinstance(document, list):
        return [bad for i, value in enumerate(document) for bad in long_amounts(value, f"{where}[{i}]")]
    amount = isinstance(document, str) and re.fullmatch(r"-?\d+\.\d+", document)
    if amount and (len(document.split(".")[1]) > 8 or (document.startswith("-") and not Decimal(document))):
        return [f"{where} = {document}"]
    return []


async def test_no_amount_has_more_than_8_decimals_or_reads_minus_zero(home: Path) -> None:
    """Estimates from marks (0.500 × a mark of 8 places has 11), maintenance margin scaled with notional (a quotient:
    28 digits) and a short at its entry price (−0) are cut the way the screen cuts them, in JSON too."""
    simulator = ExchangeSimulator()
    simulator.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    simulator.account.change_position("XRPUSDT", "BOTH", Decimal("-1000"), Decimal("0.5"), 0)  # a short
    simulator.account.marks["XRPUSDT"] = Decimal("0.5")  # at its entry price: uPnL −1000 × 0
    env = clean_env(home, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
    async with simulator:
        watch = await Watch.start("--ws-url", simulator.ws_url, env=env)
        await watch.until(lambda: bool(simulator.market_subscriptions()))
        for tick in range(1, 4):
            simulator.account.tick(simulator.server_time_ms())
            simulator.account.marks["XRPUSDT"] = Decimal("0.5")
            await simulator.push_marks(tick)

            def painted(t: int = tick) -> bool:
                return bool(sum(line["cause"] == "mark" for line in watch.of_type("snapshot")) >= t)

            await watch.until(painted)
        code, err = await watch.stop()
        assert code == 143, err
        code, out, err = await run_cli("snapshot", "--json", "--ws-url", simulator.ws_url, env=env)
        assert code == 0, err
    marked = [line for line in watch.of_type("snapshot") if line["totals_source"] == "mark"]
    assert marked and any(p["source"] == "mark" for p in marked[-1]["positions"])
    assert long_amounts(watch.lines) == []
    assert long_amounts(json.loads(out)) == []


def test_the_mode_label_says_which_exchange_this_is() -> None:
    from tui.wiring import Exchange

    assert Exchange("wss://ws-fapi.binance.com/ws-fapi/v1", "", None).label == "LIVE"
    assert Exchange("wss://testnet.binancefuture.com/ws-fapi/v1", "", None).label == "TESTNET"
    assert Exchange("ws://127.0.0.1:8765/ws-fapi/v1", "", None).label == "CUSTOM"
    assert Exchange("wss://ws-fapi.binance.com.evil.example/ws-fapi/v1", "", None).label == "CUSTOM"


async def test_watch_reports_live_upnl_from_marks_at_no_weight(home: Path) -> None:
    """Marks moving every second, no pushes: each snapshot's USDT and USDC uPnL is Σ positionAmt × (mark − entry)
    over the marks the exchange sent within the last second, and the app's weight stays inside 5 % a minute."""
    simulator = ExchangeSimulator()
    simulator.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    sent: list[tuple[float, dict[str, Decimal]]] = []
    async with simulator:

        async def ticker() -> None:
            tick = 0
            while True:
                await asyncio.sleep(1.0)
                tick += 1
                simulator.account.tick(simulator.server_time_ms())
                sent.append((asyncio.get_running_loop().time(), dict(simulator.account.marks)))
                await simulator.push_marks(tick)

        def live() -> list[dict[str, Any]]:
            # Once every position has its first mark, each tick's snapshot is computed from marks.
            return [
                line
                for line in watch.of_type("snapshot")
                if line["positions"] and all(p["source"] == "mark" for p in line["positions"])
            ]

        task = asyncio.create_task(ticker())
        env = clean_env(home, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
        watch = await Watch.start("--ws-url", simulator.ws_url, env=env)
        try:
            await watch.until(lambda: len(live()) >= 5)
        finally:
            task.cancel()
            code, err = await watch.stop()
        assert code == 143, err
        spent = max(simulator.own_weight(w) for w in {t // 60_000 for t, _ in simulator.requests})
    assert spent <= 120
    marks_sent = [marks for _, marks in sent]
    for line in live():
        positions = line["positions"]
        assert {p["symbol"] for p in positions} == {"BTCUSDT", "ETHUSDT", "SOLUSDC"}
        for asset in ("USDT", "USDC"):
            row = line["balances"][asset]
            assert row["upnl_source"] == "mark"
            computed = sum(
                (
                    # each position's, cut toward −∞ at the exchange's 8 places as the screen cuts it
                    cut(Decimal(p["amount"]) * (Decimal(p["mark_price"]) - Decimal(p["entry_price"])), 8)
                    for p in positions
                    if p["margin_asset"] == asset and not p["isolated"]
                ),
                Decimal(0),
            )
            assert Decimal(row["cross_un_pnl"]) == computed  # exact decimal strings, the formula to the digit
        shown = {p["symbol"]: Decimal(p["mark_price"]) for p in positions}
        assert shown in marks_sent  # marks the exchange really sent, not made up
