"""Keymap entries from the config: applied when they make sense, left out with a warning when they do not."""

from __future__ import annotations

from services.settings import Settings
from tui.app import BalanceApp
from tui.checks import checked_keymap, key_parses, unknown_theme
from tui.screens.dashboard import DashboardScreen
from tui.screens.help import HelpScreen

BINDINGS = [DashboardScreen.BINDINGS, HelpScreen.BINDINGS]


def test_good_entries_are_kept() -> None:
    keymap, warnings = checked_keymap({"refresh": "f5,r", "quit": "ctrl+q"}, BINDINGS)
    assert keymap == {"refresh": "f5,r", "quit": "ctrl+q"} and warnings == []


def test_an_entry_naming_no_binding_is_left_out() -> None:
    keymap, warnings = checked_keymap({"refesh": "f5"}, BINDINGS)
    assert keymap == {} and "no binding called 'refesh'" in warnings[0]


def test_an_entry_that_does_not_parse_is_left_out() -> None:
    for spec in ("ctrl+", "ctl+r", "not a key", ""):
        keymap, warnings = checked_keymap({"refresh": spec}, BINDINGS)
        assert keymap == {} and "not a key" in warnings[0], spec


def test_an_entry_that_takes_another_bindings_key_is_left_out() -> None:
    keymap, warnings = checked_keymap({"refresh": "q"}, BINDINGS)  # q is quit's
    assert keymap == {} and "already the key of quit" in warnings[0]
    # moving quit away first frees q
    keymap, warnings = checked_keymap({"quit": "ctrl+q", "refresh": "q"}, [DashboardScreen.BINDINGS])
    assert keymap == {"quit": "ctrl+q", "refresh": "q"} and warnings == []


def test_keys_textual_knows() -> None:
    assert all(key_parses(k) for k in ("r", "f5", "ctrl+r", "question_mark", "plus", "escape", "shift+tab"))
    assert not any(key_parses(k) for k in ("", "ctrl+", "hyperdrive", "control+r"))
    assert unknown_theme("nord") is None and "nord" in (unknown_theme("neon") or "")


async def test_the_dashboard_shows_the_warnings_and_keeps_the_defaults() -> None:
    app = BalanceApp(Settings(keymap={"refresh": "q", "nope": "x"}))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        messages = [text for _, text in app.said]
        assert any("already the key of quit" in m for m in messages)
        assert any("no binding called 'nope'" in m for m in messages)
        assert app.screen.active_bindings["q"].binding.id == "quit"  # q still quits
