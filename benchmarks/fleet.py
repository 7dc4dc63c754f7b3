"""A fleet of three headless workers on one backlog, with and without `orders-tui watch`
attached, against three bare confluent-kafka consumers in one group.

Loads a backlog (default 300,000 orders, 6 partitions), then, in interleaved rounds, each
in a fresh consumer group:

- bare: three processes, each `consume(1000)` + fastavro decode + an asynchronous commit
  per batch, in one group: the raw client's limit for a group of three here;
- fleet: three `orders-tui consume --headless` workers;
- fleet + watch: the same, with the observer (`watch`'s engine and dashboard, Textual's
  `run_test` at 120x40, in a process of its own) attached, as a person watching it;
- fleet + watch, keys: the same, pressing `tab` every 50 ms throughout (far more than a
  person does), for the key latency (a key sent through the driver to the first frame
  showing its effect: keys.py) and what that load costs the workers.

Each is timed from the group's first commit to the moment its commits reach the end of
every partition of the source (read by an admin client every 20 ms), so start-up is not
counted. Prints orders/s and ratios against the bare group; for the observer, the
longest a member's figures went without a new status record (target: refreshed at least
once a second), the key
latency p99 (target < 100 ms) and its peak RSS (target < 150 MB). Target: fleet + watch
>= 0.95 of fleet.

    python benchmarks/fleet.py [-b HOST:PORT] [-n 300000] [--rounds 3]

With --scale-out: 1, 2 and 3 workers, against a bare group of as many confluent-kafka
consumers, each on fresh topics: once the group has settled (every member holding its
share of the source, as the broker describes the group), the backlog is written and the
group timed to its end; for each worker, its partitions of the source and the retry
topics and its share of the orders finished (its outcome log).

    python benchmarks/fleet.py --scale-out [-b HOST:PORT] [-n 300000] [--rounds 1]
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import fastavro
from _common import fresh_topics, parse_args, report
from app import cpu_seconds, peak_rss_mb
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from keys import FrameClock

from orders_tui.domain.codec import _PARSED
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.consumer_set import pipeline_instance_id
from orders_tui.kafka.engine_config import EngineConfig, EngineOptions
from orders_tui.kafka.observer import Observer
from orders_tui.kafka.pipeline import CONSUMER_DEFAULTS
from orders_tui.kafka.producer import OrderProducer
from orders_tui.ui.app import OrdersApp

WORKERS = 3
WATCH_EVERY = 0.02
KEY_EVERY = 0.05


def group_progress(admin: AdminClient, consumer: Consumer, topic: str) -> tuple[int, int]:
    """(committed, end) summed over the source's partitions."""
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
    tps = [TopicPartition(topic, p) for p in partitions]
    committed = sum(max(0, tp.offset) for tp in consumer.committed(tps, timeout=10))
    end = sum(consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps)
    return committed, end


def time_group(settings: KafkaSettings, group: str, total: int = 0) -> float:
    """Orders/s from the group's first commit to its commits at the end (and at
    `total` at least, while a backlog is still being written)."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    reader = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": group})
    try:
        first = None
        while True:
            committed, end = group_progress(admin, reader, settings.topic)
            now = time.monotonic()
            if first is None and committed:
                first = (now, committed)
            if first is not None and committed >= max(end, total):
                return (end - first[1]) / (now - first[0])
            time.sleep(WATCH_EVERY)
    finally:
        reader.close()


def bare_member(bootstrap: str, topic: str, group: str) -> None:
    """One of the bare group's consumers: decode and commit until idle for 3 s (or 60 s
    before the first record: in --scale-out the backlog comes once the group settled)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False, **CONSUMER_DEFAULTS})  # fmt: skip
    consumer.subscribe([topic])
    reader = io.BytesIO()
    idle_since, idle_for = time.monotonic(), 60.0
    while time.monotonic() - idle_since < idle_for:
        messages = consumer.consume(1000, 0.1)
        if not messages:
            continue
        idle_since, idle_for = time.monotonic(), 3.0
        for msg in messages:
            reader.seek(0)
            reader.write(msg.value())
            reader.truncate()
            reader.seek(0)
            fastavro.schemaless_reader(reader, _PARSED, _PARSED)
        consumer.commit(asynchronous=True)
    consumer.close()


def spawn_bare(settings: KafkaSettings, group: str, count: int = WORKERS) -> list[subprocess.Popen]:
    argv = [sys.executable, __file__, "--bare", settings.bootstrap_servers, settings.topic, group]
    return [subprocess.Popen(argv) for _ in range(count)]


def spawn_workers(settings: KafkaSettings, group: str, status_topic: str) -> list[subprocess.Popen]:
    """Retry topics of the run's own: a new group reads them from the start, and earlier
    runs' retries would be work this run did not make."""

    def argv(n: int) -> list[str]:
        return [sys.executable, "-m", "orders_tui", "consume", "--headless", "--idle-exit", "3",
                "-b", settings.bootstrap_servers, "--topic", settings.topic,
                "--dlq-topic", settings.dlq_topic, "--group", group, "--instance-id",
                f"bench-{n}", "--status-topic", status_topic,
                "--retry-topic-prefix", f"{group}-retry"]  # fmt: skip

    return [subprocess.Popen(argv(n), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for n in range(WORKERS)]  # fmt: skip


async def watch(settings: KafkaSettings, group: str, status_topic: str,
                press_keys: bool) -> dict[str, float]:  # fmt: skip
    """The observer and its dashboard until the fleet's commits reach the end."""
    config = EngineConfig(
        group=group, status_topic=status_topic, retry_topic_prefix=f"{group}-retry"
    )
    observer = Observer(settings, EngineOptions(config))
    app = OrdersApp(observer)
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    reader = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": group})
    latencies: list[float] = []
    seen: dict[str, set[int]] = {}
    async with app.run_test(size=(120, 40)):
        clock = FrameClock(app)
        start = time.monotonic()
        cpu_at_start = cpu_seconds("self")
        next_key = check = start
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            for member in observer.view().fleet.members.values():
                seen.setdefault(member.member, set()).add(member.updated_ms)
            if press_keys and now >= next_key:
                latencies.append(await clock.tab())
                next_key = time.monotonic() + KEY_EVERY
            if now >= check:
                committed, end = group_progress(admin, reader, settings.topic)
                if committed and committed >= end:
                    break
                check = now + 0.5
        elapsed = time.monotonic() - start
        cpu = cpu_seconds("self") - cpu_at_start
    reader.close()
    latencies.sort()
    # The longest a member's figures went without a new record, as the observer saw them.
    gaps = [max(b - a for a, b in itertools.pairwise(sorted(s))) / 1000
            for s in seen.values() if len(s) > 1]  # fmt: skip
    return {
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else 0.0,
        "longest_gap_s": max(gaps) if gaps else float("inf"),
        "members": len(seen),
        "seconds": elapsed,
        "cpu_share": cpu / elapsed,  # of one core, librdkafka's threads included
        "rss_mb": peak_rss_mb("self"),
    }


def fleet_run(settings: KafkaSettings, watch_mode: str = "") -> tuple[float, dict | None]:
    """`watch_mode`: "" (no observer), "idle" or "keys"."""
    group = f"bench-fleet-{uuid.uuid4().hex[:8]}"
    status_topic = f"bench-status-{uuid.uuid4().hex[:8]}"
    watcher = None
    if watch_mode:
        watcher = subprocess.Popen(
            [sys.executable, __file__, "--watch", settings.bootstrap_servers, settings.topic,
             settings.dlq_topic, group, status_topic, watch_mode],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(2)  # attached before the workers start, as a watching team would be
    workers = spawn_workers(settings, group, status_topic)
    rate = time_group(settings, group)
    for worker in workers:
        worker.wait(60)
    if watcher is None:
        return rate, None
    out, _ = watcher.communicate(timeout=60)
    return rate, json.loads(out.strip().splitlines()[-1])


def held_partitions(admin: AdminClient, group: str) -> dict[str, Counter]:
    """Each worker's partitions per topic as the broker describes the group ({} while it
    cannot say); a worker's members (`w0`, `w0#retry-1`, ...) summed."""
    try:
        members = admin.describe_consumer_groups([group])[group].result(5).members
    except Exception:
        return {}
    held: dict[str, Counter] = {}
    for member in members:
        worker = pipeline_instance_id(member.group_instance_id or member.member_id)
        topics = Counter(tp.topic for tp in member.assignment.topic_partitions)
        held[worker] = held.get(worker, Counter()) + topics
    return held


def scale_out_run(bootstrap: str, args, workers: int, bare: bool, folder: Path) -> dict:
    """`workers` members on fresh topics: once the group has settled (each holds its
    share, as the broker describes it), the backlog is written and the group timed.
    Returns the rate and each worker's partitions and orders finished."""
    partitions = max(args.partitions, 6)
    settings = fresh_topics(bootstrap, partitions, "bench-scale")
    group = f"bench-scale-{uuid.uuid4().hex[:8]}"
    logs = [folder / f"{group}-{n}.jsonl" for n in range(workers)]
    if bare:
        procs = spawn_bare(settings, group, workers)
    else:
        procs = [subprocess.Popen(
            [sys.executable, "-m", "orders_tui", "consume", "--headless",
             "-b", bootstrap, "--topic", settings.topic, "--dlq-topic", settings.dlq_topic,
             "--group", group, "--instance-id", f"w{n}", "--outcomes", str(logs[n])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ) for n in range(workers)]  # fmt: skip
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 60
    while True:
        held = held_partitions(admin, group)
        if len(held) == workers and all(
            c[settings.topic] == partitions // workers for c in held.values()
        ):
            break
        assert time.monotonic() < deadline, f"the group did not settle: {held}"
        time.sleep(0.3)
    writer = threading.Thread(
        target=lambda: OrderProducer(settings, seed=1).produce(args.count), daemon=True
    )
    writer.start()
    rate = time_group(settings, group, args.count)
    writer.join()
    for proc in procs:
        if not bare:
            proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    finished = [sum(1 for _ in log.open()) if log.exists() else 0 for log in logs]
    source = settings.topic
    members = {}
    for n, (name, topics) in enumerate(sorted(held.items())):
        members[name] = {
            "source": topics[source],
            "retry": sum(c for t, c in topics.items() if t != source),
            "share": finished[n] / max(1, sum(finished)) if not bare else None,
        }
    return {"rate": rate, "members": members}


def scale_out(args) -> None:
    bootstrap = args.bootstrap_servers
    rates: dict[tuple[int, bool], list[float]] = {}
    last: dict[int, dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        scale_out_run(bootstrap, args, 1, False, Path(folder))  # warm-up
        for _ in range(args.rounds):
            for n in (1, 2, 3):
                for bare in (True, False):
                    run = scale_out_run(bootstrap, args, n, bare, Path(folder))
                    rates.setdefault((n, bare), []).append(run["rate"])
                    if not bare:
                        last[n] = run["members"]
    partitions = max(args.partitions, 6)
    print(f"scale-out: {args.count:,} orders written once the group settled, {partitions} "
          f"partitions (source and 3 retry topics), medians of {args.rounds} rounds")  # fmt: skip
    one = statistics.median(rates[1, False])
    for n in (1, 2, 3):
        rate, base = statistics.median(rates[n, False]), statistics.median(rates[n, True])
        print(f"  {n} worker(s): {rate:>9,.0f} orders/s = {rate / one:4.2f} x one worker; "
              f"bare group of {n}: {base:>9,.0f} orders/s, ratio {rate / base:4.2f}")  # fmt: skip
        for name, member in last[n].items():
            print(f"      {name}: source partitions {member['source']}/{partitions}, retry "
                  f"partitions {member['retry']}/{3 * partitions}, orders finished "
                  f"{100 * member['share']:.0f} %")  # fmt: skip


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_count=300_000, rounds=3,
                      extra=[("--scale-out", {"action": "store_true"})])  # fmt: skip
    if args.scale_out:
        scale_out(args)
        return
    settings = fresh_topics(args.bootstrap_servers, max(args.partitions, 6), "bench-fleet")
    assert OrderProducer(settings, seed=1).produce(args.count).delivered == args.count
    fleet_run(settings)  # warm-up: the broker's JIT, the page cache
    bare, fleet, watched, pressed, observers = [], [], [], [], []
    for _ in range(args.rounds):
        group = f"bench-bare-{uuid.uuid4().hex[:8]}"
        members = spawn_bare(settings, group)
        bare.append(time_group(settings, group))
        for member in members:
            member.wait(60)
        fleet.append(fleet_run(settings)[0])
        rate, observed = fleet_run(settings, "idle")
        watched.append(rate)
        rate, observed_keys = fleet_run(settings, "keys")
        pressed.append(rate)
        observers += [observed, observed_keys]
    report(
        f"{WORKERS} workers on a backlog of {args.count:,} orders, "
        f"{max(args.partitions, 6)} partitions, medians of {args.rounds} rounds",
        [
            ("bare group (consume + fastavro + commit)", statistics.median(bare)),
            ("fleet (orders-tui consume --headless)", statistics.median(fleet)),
            ("fleet + orders-tui watch", statistics.median(watched)),
            ("fleet + watch, tab every 50 ms", statistics.median(pressed)),
        ],
        baseline="bare group (consume + fastavro + commit)",
    )
    print(f"  fleet + watch / fleet: {statistics.median(watched) / statistics.median(fleet):.2f}"
          " (target >= 0.95)")  # fmt: skip
    print(
        f"  observer: {min(o['members'] for o in observers)} members seen; the longest a "
        f"member's figures went unrefreshed {max(o['longest_gap_s'] for o in observers):.2f} s "
        f"(target <= 1), key p99 "
        f"{statistics.median(o['p99_ms'] for o in observers if o['p99_ms']):.1f} ms "
        f"(target < 100), peak RSS "
        f"{max(o['rss_mb'] for o in observers):.0f} MB (target < 150)"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--bare"]:
        bare_member(*sys.argv[2:])
    elif sys.argv[1:2] == ["--watch"]:
        bootstrap, topic, dlq, group, status_topic, mode = sys.argv[2:]
        settings = KafkaSettings(bootstrap, topic, dlq)
        result = asyncio.run(watch(settings, group, status_topic, mode == "keys"))
        print(json.dumps(result))
    else:
        main()
