"""A DataTable over a bounded, keyed model, flushed to the screen in batches.

Rows are upserted as engine events arrive and reach the DataTable at most once a tick.
Removing DataTable rows one at a time costs O(rows) each, so the model may overshoot
its bound by TRIM_SLACK rows and is then cut back and rebuilt in one go.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

TRIM_SLACK = 100


class BoundedTable(DataTable):
    def __init__(
        self,
        columns: Sequence[tuple[str, str, int | None]],
        max_rows: int = 500,
        **kwargs: object,
    ) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._columns_spec = columns
        self.max_rows = max_rows
        self.rows_model: OrderedDict[str, tuple[Text | str, ...]] = OrderedDict()
        self._added: list[str] = []
        self._updated: set[str] = set()
        self._rebuild = False

    def on_mount(self) -> None:
        for key, label, width in self._columns_spec:
            self.add_column(label, key=key, width=width)

    def upsert(self, key: str, cells: tuple[Text | str, ...]) -> None:
        model = self.rows_model
        if key in model:
            model[key] = cells
            self._updated.add(key)
            return
        model[key] = cells
        self._added.append(key)
        if len(model) > self.max_rows + TRIM_SLACK:
            while len(model) > self.max_rows:
                model.popitem(last=False)
            self._rebuild = True

    def flush(self) -> None:
        """Bring the DataTable up to date with the model."""
        if not (self._rebuild or self._added or self._updated):
            return
        following = not self.has_focus or self.cursor_row >= self.row_count - 1
        if self._rebuild:
            cursor_key = self._cursor_key()
            self.clear()
            for key, cells in self.rows_model.items():
                self.add_row(*cells, key=key)
            if cursor_key in self.rows_model and not following:
                self.move_cursor(row=self.get_row_index(cursor_key), animate=False)
        else:
            for key in self._added:
                if key in self.rows_model:
                    self.add_row(*self.rows_model[key], key=key)
            for key in self._updated - set(self._added):
                for column, value in zip(self._columns_spec, self.rows_model[key], strict=True):
                    self.update_cell(key, column[0], value)
        self._added.clear()
        self._updated.clear()
        self._rebuild = False
        if following and self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)

    def _cursor_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:
            return None
