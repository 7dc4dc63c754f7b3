"""Layout snapshots and literal text, from a fixed data set (no broker needed)."""

from __future__ import annotations

import os
import time

import pytest

from orders_tui.ui.panes.dlq import DlqPane
from orders_tui.ui.screens.dlq_entry import DlqEntryScreen
from tests.ui_helpers import screen_text
from tests.ui_samples import HOSTILE_PRODUCT, sample_app, sample_events


@pytest.fixture(autouse=True)
def utc():
    """Times in the panes are local: pin the zone so snapshots match anywhere."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


async def _load(pilot) -> None:
    pilot.app.apply_events(sample_events())
    await pilot.pause()


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_layout(snap_compare, size):
    assert snap_compare(sample_app(), terminal_size=size, run_before=_load)


def test_dlq_entry_view_layout(snap_compare):
    async def open_entry(pilot) -> None:
        await _load(pilot)
        pilot.app.query_one(DlqPane).focus()
        await pilot.press("up", "enter")

    assert snap_compare(sample_app(), terminal_size=(120, 40), run_before=open_entry)


async def test_untrusted_text_is_shown_literally_everywhere():
    app = sample_app()
    visible = "[bold red]x[/] \\x1b[31mred\\x1b[0m"
    async with app.run_test(size=(160, 40)) as pilot:
        await _load(pilot)
        assert "[bold red]x[/]" in screen_text(app)  # the Orders pane's product column
        dlq = app.query_one(DlqPane)
        assert any(
            "[bold red]x[/]" in str(row[-1]) for row in map(dlq.get_row_at, range(dlq.row_count))
        )
        dlq.focus()
        await pilot.pause()
        await pilot.press("enter")  # the cursor follows the newest entry: the hostile one
        assert isinstance(app.screen, DlqEntryScreen)
        await pilot.pause()
        text = screen_text(app)
        assert visible in text
        assert f"bad product {visible}" in text
        assert "\x1b" not in text
    # The product as stored is untouched: only its display is escaped.
    assert HOSTILE_PRODUCT.startswith("[bold red]")
