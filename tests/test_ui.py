"""Layout snapshots and literal text, from a fixed data set (no broker needed)."""

from __future__ import annotations

import gc
import os
import time
from dataclasses import replace
from itertools import pairwise

import pytest
from textual.widgets._footer import FooterKey

from orders_tui.kafka.config import RegistrySettings
from orders_tui.kafka.events import ROWS_SHOWN, RegistryStatus
from orders_tui.ui.panes.dlq import DlqPane
from orders_tui.ui.panes.table import TRIM_SLACK
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


async def test_bidi_overrides_and_zero_width_characters_are_shown_as_escapes():
    from orders_tui.kafka.events import OrderSeen, OrderState, RetryScheduled

    # Reversed by U+202E, "gpj.exe" reads as "exe.jpg"; U+200B hides between letters.
    product = "Lamp\u202egpj.exe"
    order_id = "cccccccc\u200b-0000-4000-8000-000000000003"
    app = sample_app()
    async with app.run_test(size=(160, 40)) as pilot:
        await _load(pilot)
        app.apply_events([
            OrderSeen(0, 300, order_id, product, 20.0, OrderState.RETRYING, 1),
            RetryScheduled(0, 300, order_id, 1, 4, "down", time.time() + 60),
        ])  # fmt: skip
        await pilot.pause()
        text = screen_text(app)
    assert "Lamp\\u202egpj.exe" in text  # the Orders pane
    assert "cccccccc\\u200b-0000" in text  # the Retries pane's order id
    assert "\u202e" not in text and "\u200b" not in text


async def test_the_header_says_the_stream_waits_while_kafka_is_away():
    app = sample_app()
    app.engine.shown = replace(app.engine.shown, streaming=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await _load(pilot)
        assert "streaming 10/s" in screen_text(app)
        app.engine.shown = replace(app.engine.shown, stream_waiting=True)
        await pilot.pause(0.3)
        text = screen_text(app)
    assert "stream waiting for Kafka" in text and "streaming 10/s" not in text


async def test_every_figure_shows_at_80x24_without_scrolling():
    """The Aggregates pane at its smallest: all the figures and the sparkline on screen
    (the sample has 115 processed of 123, 5 retries, 2 recovered, 8 dead-lettered, lag
    12 + 3 + 0); only the lag bar of each partition is a scroll away."""
    app = sample_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _load(pilot)
        await pilot.pause(0.3)
        text = screen_text(app)
        pane = app.aggregates
        assert pane.spark.region.bottom <= pane.content_region.bottom
        pane.scroll_end(animate=False)
        await pilot.pause(0.3)
        scrolled = screen_text(app)
    for shown in (
        "lag 15  worst p1 12, p2 3",
        "count 115 · of 123",
        "Σ 23,330.00 · avg 202.87",
        "retries 5 · recovered 2",
        "dead 8 · perm 6 · exh 1",
        "undecodable 1",
    ):
        assert shown in text, shown
    assert "█" in text  # the orders/s sparkline
    assert "p1 ████████████ 12" in scrolled and "p0              0" in scrolled


async def test_question_mark_shows_every_key_and_tab_walks_the_panes():
    from orders_tui.ui.screens.help import HelpScreen

    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _load(pilot)
        assert app.focused is app.orders
        walked = []
        for _ in range(4):
            await pilot.press("tab")
            walked.append(app.focused.id)
        assert walked == ["retries", "dlq", "aggregates", "orders"]
        await pilot.press("shift+tab")
        assert app.focused is app.aggregates
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.pause(0.2)
        text = screen_text(app)
        for what in ("produce a batch of orders", "start / stop a continuous stream",
                     "pause / resume consumption", "move between panes",
                     "the DLQ workbench", "quit (commits what is done)"):  # fmt: skip
            assert what in text, what
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_the_retries_pane_keeps_a_bounded_history_of_retries_that_never_end():
    """watch sees retries whose outcome it never learns: they must not pile up."""
    from orders_tui.kafka.events import RetryScheduled
    from orders_tui.ui.panes.table import TRIM_SLACK

    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        for n in range(5_000):  # a tick each 500, as they arrive: each is `due` at once
            app.retries.show(RetryScheduled(0, n, f"order-{n}", 1, 4, "down", app.clock() - 1))
            if n % 500 == 499:
                app.retries.tick()
        app.retries.flush()
        await pilot.pause()
        assert len(app.retries._pending) <= app.retries.max_rows + TRIM_SLACK
        assert len(app.retries.rows_model) <= app.retries.max_rows + TRIM_SLACK
        assert "order-4999" in screen_text(app)


async def test_a_notice_quoting_others_is_shown_literally():
    """Notices quote what others chose: a fleet command's sender, a broker's message. The
    toast shows them as written (Textual reads a notification as markup unless told)."""
    from orders_tui.kafka.events import Notice

    app = sample_app()
    async with app.run_test(size=(160, 40)) as pilot:
        app.apply_events([Notice("paused by a fleet command from [bold red]x[/]\x1b[2J (#3)")])
        await pilot.pause()
        (shown,) = list(app._notifications)
    assert shown.markup is False
    assert shown.message == "paused by a fleet command from [bold red]x[/]\\x1b[2J (#3)"


async def test_the_header_says_when_the_schema_registry_is_away_and_the_pane_what_it_read():
    app = sample_app()
    app.engine.settings = replace(app.engine.settings,
                                  registry=RegistrySettings("http://registry:8081"))  # fmt: skip
    app.engine.shown.stats.schemas_seen = {
        "orders-value v1 (id 7)": 1200,
        "\x1b[31morders-value v2 (id 9)": 34,
    }
    async with app.run_test(size=(160, 60)) as pilot:
        await _load(pilot)
        assert "registry ● ok" in screen_text(app)
        app.apply_events([RegistryStatus(False)])
        await pilot.pause(0.3)
        away = screen_text(app)
        app.apply_events([RegistryStatus(True)])
        await pilot.pause(0.3)
        back = screen_text(app)
    assert "registry ● unreachable: records wait" in away and "registry ● ok" not in away
    assert "registry ● ok" in back
    assert "orders-value v1 (id 7)  1,200" in back
    assert "\\x1b[31morders-value v2 (id 9)  34" in back  # escapes shown


async def test_moving_between_panes_holds_no_memory_of_earlier_footers():
    """Textual's Footer leaked its keys on every focus change (Textualize/textual#6666):
    after 60 tabs, only the keys on screen are alive."""
    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _load(pilot)
        for _ in range(60):
            await pilot.press("tab")
        await pilot.pause(0.2)
        gc.collect()
        alive = sum(isinstance(o, FooterKey) for o in gc.get_objects())
        shown = len(app.screen.query(FooterKey))
    assert shown > 0 and alive <= 2 * shown, (alive, shown)


async def test_a_repaint_between_a_trim_and_the_next_flush_never_fails():
    """Under load the tables flush every third tick, and a key's repaint may come in
    between: rows trimmed meanwhile are drawn blank, not a KeyError that ends the
    dashboard (seen with `tab` every 50 ms on a busy fleet)."""
    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _load(pilot)
        pane = app.orders
        shown = pane.row_count
        for i in range(ROWS_SHOWN + TRIM_SLACK):  # enough to trim every row shown
            pane.upsert(f"new-{i}", ("0/1", "1.00", "processed", "Lamp", f"id-{i}"))
        assert pane.row_count == shown  # not flushed: the screen still lists the old rows
        lines = [pane.render_line(y).text for y in range(1, shown + 1)]
        await pilot.press("tab")
        assert app.is_running
    assert all(not line.strip() for line in lines)


async def test_a_pane_keeps_its_newest_500_rows_and_repaints_a_third_as_often_under_load():
    """As the README says: each pane keeps its last 500 rows; while more than 500 events
    a second arrive (50 and more a tick), the tables repaint every third tick, and at a
    person's pace every tick."""
    from orders_tui.kafka.events import OrderSeen, OrderState

    app = sample_app()
    made = iter(range(10_000))

    def tick(orders: int) -> int:
        """One tick's worth of orders; what the Orders pane shows after it."""
        app.apply_events([OrderSeen(0, n, f"order-{n:05d}", "Lamp", 100.0, OrderState.PROCESSED)
                          for n in (next(made) for _ in range(orders))])  # fmt: skip
        return app.orders.row_count

    async with app.run_test(size=(120, 40)) as pilot:
        # No await between ticks: the app's own timer cannot add a tick in between.
        calm = [tick(10) for _ in range(6)]
        busy = [tick(60) for _ in range(9)]
        settled = tick(0)
        await pilot.pause()
        text = screen_text(app)
    assert calm == [10, 20, 30, 40, 50, 60]
    repaints = sum(1 for before, after in pairwise([calm[-1], *busy]) if after != before)
    assert repaints == 3, busy
    assert settled == 500  # 600 orders in all: the newest 500
    assert "│ 0/599 " in text  # following the newest
    assert next(iter(app.orders.rows_model)) == "0:100"  # the oldest kept


async def test_the_orders_pane_follows_the_newest_until_the_cursor_moves_up():
    from orders_tui.kafka.events import OrderSeen, OrderState

    app = sample_app()
    made = iter(range(10_000))

    def tick(orders: int) -> None:
        app.apply_events([OrderSeen(0, n, f"order-{n:05d}", "Lamp", 100.0, OrderState.PROCESSED)
                          for n in (next(made) for _ in range(orders))])  # fmt: skip

    async with app.run_test(size=(120, 40)) as pilot:
        tick(40)
        await pilot.pause()
        assert "│ 0/39 " in screen_text(app)
        tick(40)
        await pilot.pause()
        assert "│ 0/79 " in screen_text(app)  # followed
        await pilot.press("up", "up")
        tick(40)
        await pilot.pause()
        text = screen_text(app)
        assert "│ 0/77 " in text and "│ 0/119 " not in text  # held where the user looks
        await pilot.press("end")
        await pilot.pause()
        assert "│ 0/119 " in screen_text(app)


def test_the_lag_line_counts_one_partition_as_one():
    from orders_tui.ui.panes.aggregates import lag_line

    assert lag_line({0: 0}).plain == "lag 0  (1 partition)"
    assert lag_line({0: 0, 1: 12}).plain == "lag 12  worst p1 12  (2 partitions)"


async def test_a_dialog_keeps_its_line_breaks_and_shows_a_records_text_literally():
    """The redrive confirmation and history are the app's own lines: they break where it
    says; a reason or a topic inside them is still shown as written, escapes and all."""
    from orders_tui.ui.screens.dialogs import Confirm

    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(Confirm("Redrive 3 entries?\n\nreason: bad \x1b[31mred\n\nenter: redrive"))
        await pilot.pause()
        text = screen_text(app)
    lines = text.splitlines()
    first = next(n for n, line in enumerate(lines) if "Redrive 3 entries?" in line)
    reason = next(n for n, line in enumerate(lines) if "reason: bad \\x1b[31mred" in line)
    last = next(n for n, line in enumerate(lines) if "enter: redrive" in line)
    assert first < reason < last  # a line each, in order; the escape shown, not sent
    assert "\\x0a" not in text and "\x1b" not in text


def test_the_triage_panel_says_from_when_to_when_readably():
    """A reason's first and last time read as a span (`12-06 05:29 to 12-06 05:30`), not as
    one run of digits and dashes (`12-06 05:29-12-06 05:30`)."""
    import time as clock

    from orders_tui.domain.failure import Convention, Failure
    from orders_tui.domain.triage import Triage
    from orders_tui.ui.screens.workbench import triage_text

    triage = Triage()
    first = clock.mktime((2026, 12, 6, 5, 29, 0, 0, 0, -1)) * 1000
    for minute in (0, 1):
        failure = Failure(Convention.ORDERS_TUI, "permanent", "price 1200.00 is above", "orders",
                          0, 7, None, 0)  # fmt: skip
        triage.add(failure, int(first + minute * 60_000))
    line = triage_text(triage).plain.splitlines()[1]
    assert "12-06 05:29 to 12-06 05:30" in line
