"""Floor for the idle-cost benchmark: a static 20-row Textual DataTable that never changes (Textual's own idle cost)."""

from __future__ import annotations

import random

from textual.app import App, ComposeResult
from textual.widgets import DataTable


class StaticTable(App[None]):
    def compose(self) -> ComposeResult:
        yield DataTable()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*(f"c{i}" for i in range(8)))
        rng = random.Random(1)
        for row in range(20):
            table.add_row(*(f"{rng.random():.8f}" for _ in range(8)), key=str(row))


if __name__ == "__main__":
    StaticTable().run()
