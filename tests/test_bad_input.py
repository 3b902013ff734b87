"""Every bad input is one clear line on stderr and exit 2, never a traceback; private files stay private."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from services.settings import ConfigError, load_settings
from tests.helpers import TEST_API_KEY, TEST_SECRET, clean_env, pem, run_cli

KEYS = {"BINANCE_API_KEY": TEST_API_KEY, "BINANCE_API_SECRET": TEST_SECRET}


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def cases(home: Path) -> list[tuple[str, list[str], dict[str, str], str]]:
    """(name, arguments, environment, what the one line must say)."""
    (home / "adir").mkdir(exist_ok=True)
    nested = write(home / "nested.toml", "a = " + "[" * 5000 + "]" * 5000 + "\n")
    theme_file = write(home / "theme.toml", 'theme = "no-such-theme"\n')
    return [
        (
            "log into a missing dir",
            ["--demo", "snapshot", "--log-file", str(home / "missing" / "x.log")],
            {},
            "does not exist",
        ),
        ("log onto a directory", ["--demo", "snapshot", "--log-file", str(home / "adir")], {}, "is a directory"),
        ("log unwritable", ["--demo", "snapshot", "--log-file", "/proc/version"], {}, "cannot write the log file"),
        ("port too big", ["snapshot", "--ws-url", "ws://127.0.0.1:99999/ws-fapi/v1"], KEYS, "port"),
        ("port not a number", ["snapshot", "--ws-url", "ws://127.0.0.1:abc/ws-fapi/v1"], KEYS, "port"),
        ("no path", ["snapshot", "--ws-url", "ws://127.0.0.1:8765"], KEYS, "ws://127.0.0.1:8765/ws-fapi/v1"),
        ("theme from config", ["--demo", "--config", str(theme_file)], {}, "nord"),
        ("theme from env", ["--demo"], {"BALANCE_TUI_THEME": "neon"}, "unknown theme 'neon'"),
        ("nested TOML", ["--demo", "snapshot", "--config", str(nested)], {}, "nests too deeply"),
        ("duration zero", ["--demo", "watch", "--jsonl", "--duration", "0"], {}, "greater than 0"),
        ("duration negative", ["--demo", "watch", "--jsonl", "--duration", "-5"], {}, "greater than 0"),
        ("duration nan", ["--demo", "watch", "--jsonl", "--duration", "nan"], {}, "greater than 0"),
        ("duration text", ["--demo", "watch", "--jsonl", "--duration", "soon"], {}, "not a number of seconds"),
        ("interval text", ["snapshot", "--interval", "fast"], {}, "invalid float value"),
        ("empty key", ["snapshot"], {**KEYS, "BINANCE_API_KEY": ""}, "API key is empty"),
        ("key with a space", ["snapshot"], {**KEYS, "BINANCE_API_KEY": "abc def"}, "whitespace"),
        ("key non-ASCII", ["snapshot"], {**KEYS, "BINANCE_API_KEY": "abcdé"}, "non-ASCII"),
        ("unknown option", ["snapshot", "--jsn"], {}, "unrecognized arguments"),
        ("built-ins from env", ["--demo", "snapshot"], {"BALANCE_TUI_ALERT_BUILTINS": "x"}, "not NAME=VALUE"),
        ("built-in not a flag", ["--demo", "snapshot"], {"BALANCE_TUI_ALERT_BUILTINS": "stale=maybe"}, "boolean"),
        ("keymap from env", ["--demo", "snapshot"], {"BALANCE_TUI_KEYMAP": "{{{"}, "not valid JSON"),
        ("alerts JSON from env", ["--demo", "snapshot"], {"BALANCE_TUI_ALERTS": "[1,"}, "not valid JSON"),
        ("a bad rule from env", ["--demo", "snapshot"], {"BALANCE_TUI_ALERTS": "available:USDT<<5"}, "USDT<<5"),
    ]


CASE_NAMES = [case[0] for case in cases(Path("/tmp"))]


@pytest.mark.parametrize("name", CASE_NAMES)
async def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, name: str) -> None:
    (tmp_path / "config").mkdir()
    _, args, env, message = next(case for case in cases(tmp_path) if case[0] == name)
    code, out, err = await run_cli(*args, env=clean_env(tmp_path, **env))
    assert code == 2, (out, err)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err
    assert TEST_SECRET not in err


def test_lists_and_tables_from_the_environment_may_be_plain_text(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BALANCE_TUI_ALERTS", "available:USDT<5, margin_ratio>0.8")
    monkeypatch.setenv("BALANCE_TUI_ALERT_BUILTINS", "stale=off; margin_call=on")
    monkeypatch.setenv("BALANCE_TUI_KEYMAP", "refresh=f5,r quit=ctrl+q")
    settings = load_settings({}, config_path=write(tmp_path / "c.toml", ""))
    assert settings.alerts == ["available:USDT<5", "margin_ratio>0.8"]
    assert settings.alert_builtins == {"stale": False, "margin_call": True}
    assert settings.keymap == {"refresh": "f5,r", "quit": "ctrl+q"}
    monkeypatch.setenv("BALANCE_TUI_ALERTS", '["wallet:BTC>1"]')  # JSON still does
    assert load_settings({}, config_path=tmp_path / "c.toml").alerts == ["wallet:BTC>1"]


async def test_tilde_in_config_paths_is_expanded(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    config = write(tmp_path / "c.toml", 'log_file = "~/logs/app.log"\n')
    (tmp_path / "logs").mkdir()
    code, _, err = await run_cli("--demo", "snapshot", "--config", str(config), env=clean_env(tmp_path))
    assert code == 0, err
    log = tmp_path / "logs" / "app.log"
    assert log.exists()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600  # the log file is its owner's alone


async def test_an_unknown_config_key_is_a_warning_naming_the_nearest(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    config = write(tmp_path / "c.toml", "intervall = 3\n[profiles.x]\nstreem = false\n")
    code, _, err = await run_cli("--demo", "snapshot", "--config", str(config), env=clean_env(tmp_path))
    assert code == 0, err
    assert "unknown setting 'intervall' ignored (did you mean 'interval'?)" in err
    assert "unknown setting 'profiles.x.streem' ignored (did you mean 'stream'?)" in err


def test_a_private_key_others_can_read_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(pem(ed25519.Ed25519PrivateKey.generate()))
    key.chmod(0o644)
    monkeypatch.setenv("BINANCE_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("BINANCE_PRIVATE_KEY_FILE", str(key))
    settings = load_settings({}, config_path=write(tmp_path / "empty.toml", ""))
    with pytest.raises(ConfigError, match=f"chmod 600 {key}"):
        settings.credentials()
    key.chmod(0o600)
    assert settings.credentials() is not None


def test_a_readable_config_with_a_secret_in_any_profile_is_refused(tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.toml",
        f'profile = "main"\n[profiles.main]\ninterval = 3\n[profiles.other]\napi_secret = "{TEST_SECRET}"\n',
        0o644,
    )
    with pytest.raises(ConfigError, match="chmod 600") as info:
        load_settings({}, config_path=config)  # the selected profile holds no secret: the file still does
    assert TEST_SECRET not in str(info.value)
