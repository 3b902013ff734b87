"""Every shared option means the same before the subcommand and after it (``--testnet snapshot`` is testnet)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.endpoints import TESTNET_URL
from services.settings import Settings
from tests.helpers import TEST_API_KEY, TEST_SECRET
from tui.cli.common import build_parser, settings_from

COMMANDS = ("dashboard", "snapshot", "watch")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text("interval = 9\n[profiles.other]\ninterval = 7\nstream = false\n")
    path.chmod(0o600)
    return path


def cases(config: Path, log: Path) -> list[tuple[list[str], Callable[[Settings], Any], Any]]:
    """(the option's words, what to read off the settings, what it must be)."""
    return [
        (["--ws-url", "ws://127.0.0.1:1/ws-fapi/v1"], lambda s: s.endpoint(), "ws://127.0.0.1:1/ws-fapi/v1"),
        (["--stream-url", "ws://127.0.0.1:2"], lambda s: s.stream_endpoint(), "ws://127.0.0.1:2"),
        (["--testnet"], lambda s: s.endpoint(), TESTNET_URL),
        (["--demo"], lambda s: s.use_simulator, True),
        (["--interval", "3.5"], lambda s: s.interval, 3.5),
        (["--no-stream"], lambda s: s.stream, False),
        (["--recv-window", "7000"], lambda s: s.recv_window, 7000),
        (["--profile", "other"], lambda s: s.interval, 7.0),
        (["--config", str(config)], lambda s: s.interval, 9.0),
        (["--log-file", str(log)], lambda s: s.log_file, log),
    ]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("where", ["before", "after"])
def test_every_shared_option_before_or_after_the_subcommand(
    command: str, where: str, config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Keys in the environment: --demo must still mean the demo, not the real account.
    monkeypatch.setenv("BINANCE_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", TEST_SECRET)
    monkeypatch.setenv("BALANCE_TUI_CONFIG", str(config))
    for words, read, expected in cases(config, tmp_path / "app.log"):
        argv = [*words, command] if where == "before" else [command, *words]
        settings = settings_from(build_parser().parse_args(argv))
        assert read(settings) == expected, f"{' '.join(argv)}"


def test_after_the_subcommand_wins_over_before() -> None:
    args = build_parser().parse_args(["--interval", "3", "watch", "--interval", "4"])
    assert args.interval == 4.0


def test_without_options_nothing_is_set() -> None:
    args = build_parser().parse_args(["snapshot"])
    assert args.testnet is None and args.demo is None and args.ws_url is None


def test_each_option_is_defined_once() -> None:
    """The help of a subcommand and of the top level list the same shared options."""
    parser = build_parser()
    top = {a.dest for a in parser._actions if a.option_strings}
    sub = parser._subparsers._group_actions[0].choices["snapshot"]  # type: ignore[union-attr,index]
    sub_options = {a.dest for a in sub._actions if a.option_strings} - {"json"}
    # --version is the program's alone; the lists given on both sides of the subcommand are collected apart
    assert sub_options == (top - {"alerts", "notify_urls", "version"}) | {"alerts_after", "notify_urls_after"}


def test_notify_urls_before_and_after_the_subcommand_add_up(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('notify_urls = ["json://127.0.0.1:1/a"]\n')
    config.chmod(0o600)
    args = build_parser().parse_args(
        [
            "--notify-url",
            "json://127.0.0.1:2/b",
            "serve",
            "--notify-url",
            "json://127.0.0.1:3/c",
            "--config",
            str(config),
        ]
    )
    urls = [url.get_secret_value() for url in settings_from(args).notify_urls]
    assert urls == ["json://127.0.0.1:1/a", "json://127.0.0.1:2/b", "json://127.0.0.1:3/c"]


def test_alerts_before_and_after_the_subcommand_add_up(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('alerts = ["wallet:USDT<1"]\n')
    args = build_parser().parse_args(
        ["--alert", "available:USDT<500", "watch", "--alert", "margin_ratio>0.8", "--config", str(config)]
    )
    assert settings_from(args).alerts == ["wallet:USDT<1", "available:USDT<500", "margin_ratio>0.8"]
