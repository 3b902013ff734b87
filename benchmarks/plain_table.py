"""Baseline for the idle-cost benchmark: a plain Textual DataTable rewriting 20 cells a second."""

from __future__ import annotations

import random

from textual.app import App, ComposeResult
from textual.widgets import DataTable


class PlainTable(App[None]):
    def compose(self) -> ComposeResult:
        yield DataTable()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*(f"c{i}" for i in range(8)))
        for row in range(20):
            table.add_row(*(f"{random.random():.8f}" for _ in range(8)), key=str(row))
        self.set_interval(1.0, self.tick)

    def tick(self) -> None:
        table = self.query_one(DataTable)
        for row in range(20):
            table.update_cell(str(row), table.ordered_columns[row % 8].key, f"{random.random():.8f}")


if __name__ == "__main__":
    PlainTable().run()
