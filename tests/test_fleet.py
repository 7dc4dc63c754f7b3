"""A fleet on the real broker: three headless workers in one group and an observer
(`orders-tui watch`'s engine) that never joins it. What the observer shows is checked
against sums worked out here from the produced orders (tests/expectations.py) and
against what the topics and the group hold."""

from __future__ import annotations

import contextlib
import json
import math
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable

import pytest
from confluent_kafka import ConsumerGroupState, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from orders_tui.domain.order import Order
from orders_tui.kafka.commands import SetPaused
from orders_tui.kafka.consumer_set import pipeline_instance_id
from orders_tui.kafka.engine_config import EngineConfig, EngineOptions
from orders_tui.kafka.observer import Observer
from orders_tui.kafka.producer import OrderProducer
from orders_tui.ui.app import OrdersApp
from tests.expectations import dead_lettered, transient
from tests.kafka_helpers import group_members, read_all

pytestmark = pytest.mark.kafka


def wait_for(predicate, timeout: float, what: str | Callable[[], str]) -> float:
    """Seconds it took; fails naming `what` (or what it returns then) after `timeout`."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out: {what() if callable(what) else what}")
        time.sleep(0.05)
    return time.monotonic() - start


def produce(settings, count: int, seed: int) -> list[Order]:
    orders: list[Order] = []
    assert OrderProducer(settings, seed=seed, on_order=orders.append).produce(count).delivered
    return orders


def group_settled(settings, group: str, members: int, partitions: int) -> bool:
    """The group, as the broker describes it: stable, with `members` pipelines holding
    `partitions` partitions between them, none twice (a cooperative rebalance takes two
    rounds: the first only takes partitions away)."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    try:
        description = admin.describe_consumer_groups([group])[group].result(10)
    except KafkaException as exc:
        loading = (
            KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
            KafkaError.COORDINATOR_NOT_AVAILABLE,
            KafkaError.NOT_COORDINATOR,
        )
        if exc.args[0].code() in loading:  # a broker just started: its coordinator moves in
            return False
        raise
    held = [(tp.topic, tp.partition) for m in description.members
            for tp in m.assignment.topic_partitions]  # fmt: skip
    pipelines = {pipeline_instance_id(m.group_instance_id) for m in description.members}
    return (description.state == ConsumerGroupState.STABLE
            and len(pipelines) == members
            and len(held) == len(set(held)) == partitions)  # fmt: skip


@pytest.fixture
def fleet_topics() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"status-{suffix}", f"control-{suffix}"


def test_an_observer_sums_three_workers_pauses_them_and_sees_one_die(
    settings, group, tmp_path, fleet_topics
):
    status_topic, control_topic = fleet_topics
    logs = [tmp_path / f"worker-{n}.jsonl" for n in range(3)]

    def worker(n: int) -> subprocess.Popen:
        return subprocess.Popen(
            [*worker_cli(settings, group, f"worker-{n}", fleet_topics), "--outcomes", str(logs[n])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    workers = [worker(n) for n in range(3)]
    observer = Observer(settings, EngineOptions(EngineConfig(
        group=group, status_topic=status_topic, control_topic=control_topic)))  # fmt: skip
    observer.start()

    def finished() -> Counter[str]:
        """Orders in the outcome logs (a killed worker's last line may be cut short)."""
        ids: Counter[str] = Counter()
        for log in logs:
            for line in log.read_text().splitlines() if log.exists() else []:
                with contextlib.suppress(json.JSONDecodeError):
                    ids[json.loads(line)["order_id"]] += 1
        return ids

    def live() -> list:
        now = time.time()
        return [m for m in observer.view().fleet.rows(now) if now - m.updated_ms / 1000 < 3]

    try:
        # The group has settled (its 3 + 9 retry partitions spread over the three) and
        # every worker reports it, before any order arrives: no rebalance while they work,
        # so no transaction in flight is redone and the sums are exact.
        wait_for(lambda: group_settled(settings, group, 3, 12), 60, "the group settled")
        wait_for(lambda: len(live()) == 3
                 and sorted(p for m in live() for p in m.partitions) == [0, 1, 2]
                 and sum(m.retry_partitions for m in live()) == 9, 10,
                 "three workers reporting the partitions")  # fmt: skip
        orders = produce(settings, 100_000, seed=51)
        everything = {o.orderId for o in orders}
        wait_for(lambda: set(finished()) >= everything, 120, "every order finished")

        processed = [o for o in orders if not dead_lettered(o)]
        dead = Counter(
            "permanent" if o.price > 1000.0 else "retries_exhausted"
            for o in orders if dead_lettered(o)
        )  # fmt: skip

        def fleet_figures() -> str:
            rows = [
                (
                    m.member,
                    m.state,
                    round(time.time() - m.updated_ms / 1000, 1),
                    m.processed,
                    m.dead_lettered,
                )
                for m in observer.view().fleet.rows(time.time())
            ]
            return (
                f"the fleet's totals: processed {observer.view().stats.processed} of "
                f"{len(processed)}, dead-lettered {observer.view().stats.dead_lettered} of "
                f"{sum(dead.values())}; members {rows}; finished {sum(finished().values())}"
            )

        wait_for(lambda: observer.view().stats.processed == len(processed)
                 and observer.view().stats.dead_lettered == sum(dead.values()), 10,
                 fleet_figures)  # fmt: skip
        totals = observer.view().stats
        assert totals.consumed == len(orders)
        assert totals.total_price == pytest.approx(math.fsum(o.price for o in processed))
        assert totals.min_price == min(o.price for o in processed)
        assert totals.max_price == max(o.price for o in processed)
        assert totals.dead_lettered_by_type == dead
        assert totals.recovered == sum(transient(o) and not dead_lettered(o) for o in orders)
        assert sum(dead.values()) == len(read_all(settings.bootstrap_servers, settings.dlq_topic))
        assert group_members(settings, group) == 3  # the observer never joined
        wait_for(lambda: sum(observer.view().lag.values()) == 0, 10, "no lag once all is done")

        # space in `watch`: every member pauses and says so; the orders wait (lag grows)
        observer.send(SetPaused(True))
        assert observer.view().paused  # the request shows at once
        took = wait_for(lambda: observer.view().pipeline_paused, 5, "every member paused")
        assert took < 3
        done_before = sum(finished().values())
        late = produce(settings, 1_000, seed=52)
        wait_for(lambda: sum(observer.view().lag.values()) == 1_000, 10, "lag of the paused fleet")
        assert sum(finished().values()) == done_before
        observer.send(SetPaused(False))
        assert not observer.view().paused
        wait_for(lambda: set(finished()) >= {o.orderId for o in late}, 30, "resumed")

        # kill -9: shown stale within 5 s, its partitions move, nothing is lost
        victim = workers[0]
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(10) == -signal.SIGKILL
        killed_at = time.time()

        def stale() -> bool:
            rows = {m.member: m for m in observer.view().fleet.rows(time.time())}
            return time.time() - rows["worker-0"].updated_ms / 1000 > 3  # STALE_AFTER

        assert wait_for(stale, 10, "the killed worker shown stale") <= 5
        assert "worker-0" not in {m.member for m in live()}
        after = produce(settings, 5_000, seed=53)
        # its partitions wait out its session (10 s), then move to the two left
        wait_for(lambda: set(finished()) >= {o.orderId for o in after}, 60,
                 "the dead worker's partitions taken over")  # fmt: skip
        assert time.time() - killed_at < 60
        assert sorted(p for m in live() for p in m.partitions) == [0, 1, 2]
    finally:
        observer.stop()
        for worker in workers:
            if worker.poll() is None:
                worker.kill()


def worker_cli(settings, group: str, instance: str, fleet_topics: tuple[str, str]) -> list[str]:
    status_topic, control_topic = fleet_topics
    return [sys.executable, "-m", "orders_tui", "consume", "--headless",
            "-b", settings.bootstrap_servers, "--topic", settings.topic,
            "--dlq-topic", settings.dlq_topic, "--group", group, "--instance-id", instance,
            "--status-topic", status_topic, "--control-topic", control_topic]  # fmt: skip


async def test_watch_shows_each_member_and_space_pauses_them_all(settings, group, fleet_topics):
    """`orders-tui watch` as a user sees it: the members' rows, the fleet's sums, `space`
    pausing every member (one that starts meanwhile too), a stopped member said so."""
    from tests.ui_helpers import screen_text

    status_topic, control_topic = fleet_topics
    observer = Observer(settings, EngineOptions(EngineConfig(
        group=group, status_topic=status_topic, control_topic=control_topic),
        batch_size=20, seed=61))  # fmt: skip
    app = OrdersApp(observer)
    workers = [subprocess.Popen(worker_cli(settings, group, "ui-a", fleet_topics),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)]  # fmt: skip
    try:
        async with app.run_test(size=(120, 40)) as pilot:

            def shown(*texts: str) -> bool:
                screen = screen_text(app)
                return all(text in screen for text in texts)

            def consumed(member: str) -> int:
                rows = {m.member: m for m in observer.view().fleet.rows(time.time())}
                return rows[member].consumed if member in rows else -1

            async def until(condition, what: str, timeout: float = 30) -> None:
                deadline = time.monotonic() + timeout
                while not condition():
                    if time.monotonic() > deadline:
                        members = [(m.member, m.state, m.paused, m.control_seq, m.consumed)
                                   for m in observer.view().fleet.rows(time.time())]  # fmt: skip
                        raise AssertionError(
                            f"timed out: {what}; members {members}; lag "
                            f"{observer.view().lag}; screen:\n{screen_text(app)}"
                        )
                    await pilot.pause(0.1)

            await until(lambda: shown("members 1 live of 1", "● ui-a@"), "ui-a reports")
            await pilot.press("p")
            await until(lambda: consumed("ui-a") == 20, "ui-a consumed the batch")
            await until(lambda: re.search(r"consumed\s+20\b", screen_text(app)), "20 shown")
            # The Orders pane: seen on the topic by the observer's own reader, which reads
            # every 0.25 s (CI: not there yet the moment the fleet's sums were).
            await until(lambda: "produced" in screen_text(app), "the batch in the Orders pane")

            await pilot.press("space")
            assert "fleet PAUSED" in screen_text(app)  # asked: said at once
            await until(lambda: observer.view().pipeline_paused, "every member paused", timeout=5)
            workers.append(subprocess.Popen(worker_cli(settings, group, "ui-b", fleet_topics),
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                            text=True))  # fmt: skip
            await pilot.press("p")
            await until(lambda: sum(observer.view().lag.values()) == 20, "lag of the 20 new orders")
            await until(lambda: shown("members 2 live of 2")
                        and screen_text(app).count("PAUSED") == 3,  # the header, two rows
                        "ui-b started paused")  # fmt: skip
            assert consumed("ui-a") + max(0, consumed("ui-b")) == 20  # the new 20 wait

            await pilot.press("space")
            await until(lambda: consumed("ui-a") + consumed("ui-b") == 40, "all 40 consumed")
            assert "fleet RUNNING" in screen_text(app)

            workers[1].send_signal(signal.SIGTERM)
            assert workers[1].wait(10) == 0, workers[1].stderr.read()
            await until(lambda: shown("members 1 live of 2", "○ ui-b@", "stopped"),
                        "ui-b shown stopped")  # fmt: skip
    finally:
        observer.stop()
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
