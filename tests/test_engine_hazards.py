"""What the front end reads while the engine's threads write, hammered from threads: no
update lost, no "deque mutated during iteration". Neither needs a broker: the objects
are made, not started."""

from __future__ import annotations

import sys
import threading
import time

from orders_tui.domain.stats import PipelineStats
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.observer import Observer
from orders_tui.kafka.workbench import Workbench

SETTINGS = KafkaSettings("unused:9092", "orders", "orders-dlq")


def test_the_workbench_loses_no_update_published_from_four_threads():
    """The scan, the page fetcher and the jobs publish the view, each a read-modify-write
    of it: two reading the same view lost one's changes."""
    workbench = Workbench(SETTINGS)
    each = 5_000

    def publish(field: str) -> None:
        for n in range(1, each + 1):
            workbench._publish(**{field: n})

    threads = [threading.Thread(target=publish, args=(f,))
               for f in ("read", "total", "matched", "window_start")]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    view = workbench.view
    assert view.version == 4 * each
    assert (view.read, view.total, view.matched, view.window_start) == (each,) * 4


def test_the_fleet_rate_can_be_read_while_the_fleet_thread_adds_to_it():
    """`watch` and `serve` read `stats.rate`'s history on the UI thread while the
    observer's fleet thread adds a point a second: it was the live meter."""
    observer = Observer(SETTINGS)
    stop = threading.Event()

    def fleet_thread() -> None:
        second = 0
        while not stop.is_set():
            second += 1
            with observer._lock:  # as the fleet thread adds, a second at a time
                observer._rate.add(1, second)

    thread = threading.Thread(target=fleet_thread)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns often: the race shows within a second
    thread.start()
    try:
        deadline = time.monotonic() + 1.0
        reads = 0
        while time.monotonic() < deadline:
            observer.view().stats.rate.history(10**9)
            reads += 1
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(switch)
    assert reads > 100


def test_the_pipelines_figures_can_be_read_while_its_thread_counts():
    """The in-process engine handed the dashboard the pipeline's own PipelineStats, which
    the pipeline's thread goes on counting in; now a snapshot, read safely."""
    stats = PipelineStats()
    stop = threading.Event()

    def pipeline_thread() -> None:
        second = 0
        while not stop.is_set():
            second += 1
            stats.add_processed_batch([10.0, 20.0], second)
            stats.add_dead_lettered({f"type-{second % 50}": 1})

    thread = threading.Thread(target=pipeline_thread)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    thread.start()
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            seen = stats.snapshot()
            seen.rate.history(10**9)
            assert seen.dead_lettered >= 0 and sorted(seen.dead_lettered_by_type)
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(switch)
