"""The Textual internals balance-tui leans on, checked against the pinned Textual: a bump that changes one fails here,
by name, rather than as a wrong picture or a hang in use."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import textual
from textual.app import App
from textual.drivers.linux_driver import LinuxDriver
from textual.widgets import DataTable


def test_textual_is_the_pinned_version() -> None:
    from pathlib import Path

    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert f'"textual=={version("textual")}"' in pyproject, textual.__file__


def test_the_app_exception_hooks_tui_app_replaces() -> None:
    # tui/app.py: BalanceApp._handle_exception replaces Textual's (which prints every frame's locals).
    assert list(inspect.signature(App._handle_exception).parameters) == ["self", "error"]
    source = inspect.getsource(App._handle_exception)
    for name in ("self._return_code", "self._exception", "self._exception_event", "self._fatal_error"):
        assert name in source, name
    assert callable(App._close_messages_no_wait)
    assert "show_locals=True" in inspect.getsource(App._fatal_error)  # what is being kept off the screen


def test_the_linux_driver_writes_through_its_file() -> None:
    # tui/terminal.py: the driver's _file is replaced before the writer thread is made from it.
    assert "self._file = sys.__stderr__" in inspect.getsource(LinuxDriver.__init__)
    assert "WriterThread(self._file)" in inspect.getsource(LinuxDriver.start_application_mode)


def test_the_data_table_internals_the_balance_table_uses() -> None:
    # widgets/patched_table.py: its render caches (sized down), the cell render it keeps by the cell's Text, and the
    # count that keys the header's cache.
    table: DataTable[str] = DataTable()
    for cache in ("_cell_render_cache", "_row_render_cache", "_line_cache", "_row_renderable_cache"):
        assert hasattr(getattr(table, cache), "maxsize"), cache
    assert isinstance(table._update_count, int)
    assert list(inspect.signature(DataTable._render_cell).parameters) == [
        "self", "row_index", "column_index", "base_style", "width", "cursor", "hover",
    ]  # fmt: skip
    source = inspect.getsource(DataTable)
    for name in ("self._show_hover_cursor", "self._pseudo_class_state"):
        assert name in source, name


PRIVATE_DATA_TABLE = (
    "_cell_render_cache", "_row_render_cache", "_line_cache", "_row_renderable_cache", "_update_count",
    "_render_cell", "_show_hover_cursor", "_pseudo_class_state",
)  # fmt: skip


def test_only_one_module_touches_the_data_table_internals() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    users = {
        str(path.relative_to(root))
        for folder in ("widgets", "tui")
        for path in (root / folder).rglob("*.py")
        if any(f".{name}" in path.read_text() for name in PRIVATE_DATA_TABLE)
    }
    assert users == {"widgets/patched_table.py"}
