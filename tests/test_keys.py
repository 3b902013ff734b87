"""Keys you can trust (issue 24): the key's permissions asked of the exchange's REST side, -2015 explained (a
Portfolio Margin account has its own exit code and state), and secrets in the OS keyring (a file backend here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from services.clock import VirtualClock
from services.endpoints import Credentials
from services.keyaudit import explain_rejection, parse_restrictions
from services.keycheck import KeyChecker
from services.models import LinkState
from services.settings import Settings
from services.signing import Ed25519Signer, HmacSigner
from services.simulator import ExchangeSimulator
from tests.helpers import TEST_API_KEY, TEST_SECRET, Watch, clean_env, dashboard, factory, run_cli, until
from tui.app import BalanceApp
from tui.exits import CREDENTIALS, PORTFOLIO_MARGIN

#: The reply the official SDK's test holds, verbatim (PROTOCOL.md §10).
SDK_REPLY = {
    "ipRestrict": False, "createTime": 1698645219000, "enableReading": True, "enableWithdrawals": False,
    "enableInternalTransfer": False, "enableMargin": False, "enableFutures": False, "permitsUniversalTransfer": False,
    "enableVanillaOptions": False, "enableFixApiTrade": False, "enableFixReadOnly": True,
    "enableSpotAndMarginTrading": False, "enablePortfolioMarginTrading": True,
}  # fmt: skip


# -- the audit, pure ----------------------------------------------------------------------------------------------


def test_the_sdks_reply_reads_as_a_portfolio_margin_key_that_is_not_ip_restricted() -> None:
    audit = parse_restrictions(SDK_REPLY, 1)
    assert audit.known and audit.reading and audit.futures is False and audit.portfolio_margin
    assert audit.warnings() == ["allows Portfolio Margin trading", "is not IP-restricted"]
    assert "NOT IP-RESTRICTED" in audit.summary()
    assert explain_rejection(audit).kind == "portfolio margin"


def test_a_read_only_restricted_key_says_so_and_a_missing_field_is_not_taken_for_false() -> None:
    reply = {**SDK_REPLY, "ipRestrict": True, "enableFutures": True, "enablePortfolioMarginTrading": False}
    audit = parse_restrictions(reply, 1)
    assert audit.warnings() == [] and audit.summary() == "read-only ✓ IP-restricted ✓"
    partial = parse_restrictions({"enableReading": True}, 1)
    assert partial.ip_restricted is None and partial.summary() == "read-only ✓ IP-restricted ?"
    assert not parse_restrictions(["not", "an", "object"], 1).known


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ({**SDK_REPLY, "enablePortfolioMarginTrading": False}, "no futures"),
        ({**SDK_REPLY, "enableFutures": True, "enablePortfolioMarginTrading": False}, "unclear"),
    ],
)
def test_minus_2015_is_explained_only_as_far_as_the_audit_tells(reply: dict[str, object], kind: str) -> None:
    rejection = explain_rejection(parse_restrictions(reply, 1))
    assert rejection.kind == kind
    if kind == "unclear":  # all three said
        assert all(word in rejection.text for word in ("futures permission", "key's list", "Portfolio Margin"))
    assert explain_rejection(None).kind == "unclear"


# -- the check, against the simulator's REST side ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["hmac", "ed25519"])
async def test_the_check_is_signed_as_the_exchange_verifies_it(sim: ExchangeSimulator, kind: str) -> None:
    if kind == "hmac":
        credentials = Credentials(TEST_API_KEY, HmacSigner(TEST_SECRET))
    else:
        private = ed25519.Ed25519PrivateKey.generate()
        credentials = Credentials(sim.add_public_key(private.public_key()), Ed25519Signer(private))
    sim.keyring.set_permission("withdraw", True)
    audit = await KeyChecker(sim.rest_url, credentials, clock=sim.clock).check()
    assert audit.known and audit.can == ("withdraw",) and audit.ip_restricted is True
    # A wrong secret is refused by the exchange's signature check: "unknown", never an error.
    wrong = await KeyChecker(sim.rest_url, Credentials(TEST_API_KEY, HmacSigner("x" * 64)), clock=sim.clock).check()
    assert wrong.state == "unknown" and "-1022" in wrong.reason and not wrong.rejected


async def test_a_check_that_cannot_be_made_is_unknown_or_not_available(sim: ExchangeSimulator) -> None:
    credentials = Credentials(TEST_API_KEY, HmacSigner(TEST_SECRET))
    testnet = await KeyChecker(None, credentials, clock=sim.clock).check()
    assert testnet.state == "not available" and "testnet" in testnet.summary()
    closed = await KeyChecker("http://127.0.0.1:9", credentials, clock=sim.clock, timeout=2).check()
    assert closed.state == "unknown" and "unreachable" in closed.summary()
    sim.keyring.set_permission("ip-listed", False)
    refused = await KeyChecker(sim.rest_url, credentials, clock=sim.clock).check()
    assert refused.rejected and explain_rejection(refused).kind == "ip not listed"


# -- the commands -----------------------------------------------------------------------------------------------


async def _sim_with_key() -> tuple[ExchangeSimulator, str, str]:
    sim = ExchangeSimulator()
    api_key, secret = sim.add_hmac_key()
    await sim.start()
    return sim, api_key, secret


async def test_snapshot_reports_a_key_that_can_withdraw_and_is_not_ip_restricted(tmp_path: Path) -> None:
    sim, api_key, secret = await _sim_with_key()
    try:
        sim.keyring.set_permission("withdraw", True)
        sim.keyring.set_permission("ip-restrict", False)
        env = clean_env(tmp_path, BINANCE_API_KEY=api_key, BINANCE_API_SECRET=secret)
        code, out, err = await run_cli(
            "snapshot", "--json", "--no-history", "--ws-url", sim.ws_url, "--rest-url", sim.rest_url, env=env
        )
    finally:
        await sim.stop()
    assert code == 0, err
    key = json.loads(out)["key"]
    assert key["state"] == "checked" and key["can"] == ["withdraw"] and key["ip_restricted"] is False
    assert key["warnings"] == ["can withdraw", "is not IP-restricted"]
    assert err.count("\n") == 1 and "can withdraw, is not IP-restricted" in err
    assert secret not in out + err


async def test_a_portfolio_margin_account_says_so_in_one_line_with_its_own_exit_code(tmp_path: Path) -> None:
    sim, api_key, secret = await _sim_with_key()
    try:
        sim.keyring.set_permission("portfolio-margin", True)
        env = clean_env(tmp_path, BINANCE_API_KEY=api_key, BINANCE_API_SECRET=secret)
        code, out, err = await run_cli("snapshot", "--no-history", "--ws-url", sim.ws_url, env=env)  # REST: same origin
        assert code == PORTFOLIO_MARGIN and out == ""
        assert err.count("\n") == 1 and "Portfolio Margin account" in err and "not supported yet" in err
        sim.keyring.set_permission("portfolio-margin", False)
        sim.keyring.set_permission("futures", False)  # a key without futures permission: -2015 too, said as such
        code, out, err = await run_cli("snapshot", "--no-history", "--ws-url", sim.ws_url, env=env)
        assert code == CREDENTIALS and "no futures permission" in err and "Portfolio Margin" not in err
        # watch: the state says it, and it ends with the same code rather than retrying
        watch = await Watch.start("--no-history", "--ws-url", sim.ws_url, env=env)
        sim.keyring.set_permission("futures", True)
        sim.keyring.set_permission("portfolio-margin", True)
        code, err = await watch.stop(terminate=False)
    finally:
        await sim.stop()
    assert code == PORTFOLIO_MARGIN, err
    assert watch.of_type("status")[-1]["state"] == "unsupported account"
    assert [line["portfolio_margin"] for line in watch.of_type("key")][-1] is True
    assert sum(1 for _, m in sim.requests if m.endswith("account.status")) <= 3  # no retry storm


async def test_a_secret_from_the_keyring_is_used_and_appears_nowhere(tmp_path: Path) -> None:
    sim, api_key, secret = await _sim_with_key()
    try:
        env = clean_env(tmp_path, PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring")
        config = tmp_path / "config" / "balance-tui" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(f'[profiles.k]\napi_key = "{api_key}"\nws_url = "{sim.ws_url}"\nhistory = false\n')
        code, out, err = await run_cli("snapshot", "--profile", "k", env=env)
        assert code == 2 and "keys set --profile k" in err  # no secret yet: where to put it is said
        code, out, err = await _keys_set(secret, "k", env)
        assert code == 0 and secret not in out + err, err
        code, out, err = await run_cli("keys", "list", env=env)
        assert out.split() == ["k"]
        code, out, err = await run_cli("snapshot", "--profile", "k", "--json", env=env)
        assert code == 0, err
        assert json.loads(out)["balances"] and secret not in out + err
        assert secret not in config.read_text()
        code, out, err = await run_cli("keys", "delete", "--profile", "k", env=env)
        assert code == 0 and "deleted 1" in out
        code, out, err = await run_cli("keys", "list", env=env)
        assert out == ""
    finally:
        await sim.stop()


async def test_no_keyring_is_one_line_naming_the_alternatives(tmp_path: Path) -> None:
    code, _out, err = await _keys_set("whatever", "k", clean_env(tmp_path))  # the fail backend: no keyring
    assert code == 7 and err.count("\n") == 1 and "BINANCE_API_SECRET" in err and "chmod 600" in err
    assert "Traceback" not in err


def _cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "tui.cli"]


async def _keys_set(secret: str, profile: str, env: dict[str, str]) -> tuple[int, str, str]:
    """``printf SECRET | balance-tui keys set --profile P``: the secret on stdin, never on the command line."""
    import asyncio

    process = await asyncio.create_subprocess_exec(
        *_cli(), "keys", "set", "--profile", profile, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(secret.encode()), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


# -- the dashboard -----------------------------------------------------------------------------------------------


async def test_the_dashboard_warns_of_a_key_that_can_withdraw_and_shows_a_good_one(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    sim.keyring.set_permission("withdraw", True)
    app = BalanceApp(Settings(interval=2.0), clock=clock, exchange_factory=factory(sim, hmac_credentials, rest=True))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = dashboard(app)
        await until(lambda: screen.key_audit is not None, pilot=pilot)
        banner = screen.query_one("#key-warning")
        assert banner.display and "CAN WITHDRAW" in str(banner.render())
        assert any("can withdraw" in text for _, text in app.said)
        sim.keyring.set_permission("withdraw", False)
        sim.revoke_key(TEST_API_KEY)  # a -2015 asks again: the audit is then "refused", and the banner goes
        await pilot.press("r")
        await until(lambda: screen.status is not None and screen.status.state is LinkState.CREDENTIALS_REJECTED,
                    pilot=pilot, clock=clock)  # fmt: skip
        assert not banner.display
        assert "not on the key's list" in screen.status.detail
        sim.keyring.keys[TEST_API_KEY].revoked = False
        assert os.environ["PYTHON_KEYRING_BACKEND"].endswith("fail.Keyring")


# -- doctor ------------------------------------------------------------------------------------------------------


async def test_doctor_says_what_a_bug_report_needs_and_no_secret(tmp_path: Path) -> None:
    sim, api_key, secret = await _sim_with_key()
    try:
        sim.keyring.set_permission("ip-restrict", False)
        config = tmp_path / "config" / "balance-tui" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text("interval = 3\n")
        config.chmod(0o644)
        env = clean_env(tmp_path, BINANCE_API_KEY=api_key, BINANCE_API_SECRET=secret)
        code, out, err = await run_cli("doctor", "--ws-url", sim.ws_url, env=env)
        assert code == 0, err
        assert f"config file: {config} (mode 644 ✗" in out
        assert f"{api_key[:4]}…{api_key[-4:]} (hmac)" in out and api_key not in out
        assert "WS API: reachable · clock offset" in out and f"stream host {sim.stream_url}: reachable" in out
        assert "NOT IP-RESTRICTED" in out
        assert "keyring: keyring.backends.fail.Keyring (none" in out
        assert secret not in out + err
    finally:
        await sim.stop()
    # The exchange gone: each endpoint says so, and doctor still ends with its screen.
    code, out, err = await run_cli("doctor", "--ws-url", sim.ws_url, env=env)
    assert code == 0, err
    assert "WS API: NOT reachable" in out and "stream host" in out and "NOT reachable" in out
    assert "key check: unknown" in out and "Traceback" not in out + err
