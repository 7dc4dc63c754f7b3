"""`orders-tui produce` against bare confluent-kafka loops, in one run.

Each run produces the same number of orders to fresh topics with the same producer
settings (idempotent, linger 5 ms) and waits until every record is acknowledged. Two
baselines send values encoded beforehand, with the order id as key, so they measure the
client alone:

- bare: no Python call per record (a producer-level callback that only failures
  reach), the limit a Python producer can reach;
- bare + callback: an `on_delivery` function per record, as most Python producers do.

orders-tui is timed from process start to exit (`python -m orders_tui produce`), so its
start-up, order generation, Avro encoding and bookkeeping all count. Rounds are
interleaved after a warm-up; medians are shown. Target (issue 11): ratio >= 0.5 of bare.

Then `--rate R` for 10 s at 100, 3,000 and 50,000 orders/s (the test suite checks 10/s):
the rate achieved is read from the records' timestamps on the broker, first to last
(target: within 5 % of R), and the process's CPU seconds per 10,000 orders beside the
full-speed run's, start-up (a run of one order) taken off both (target, issue 28: at any
rate at most 1.5x the full-speed figure).

    python benchmarks/produce.py [-b HOST:PORT] [-n 300000] [--rounds 3] [--rate-seconds 10]
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time

from _common import fresh_topics, parse_args, report
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from orders_tui.domain.encoding import encode
from orders_tui.domain.order import OrderFactory
from orders_tui.kafka.producer import PRODUCER_DEFAULTS


def pre_encoded(count: int) -> list[tuple[str, bytes]]:
    factory = OrderFactory(1)
    return [(o.orderId, encode(o)) for o in (factory() for _ in range(count))]


def bare_loop(bootstrap: str, topic: str, records: list, per_record_callback: bool) -> float:
    failed = 0

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        nonlocal failed
        failed += err is not None

    config = {"bootstrap.servers": bootstrap, **PRODUCER_DEFAULTS}
    if not per_record_callback:
        config.update({"on_delivery": on_delivery, "delivery.report.only.error": True})
    producer = Producer(config)
    produce = producer.produce
    start = time.perf_counter()
    for key, value in records:
        while True:
            try:
                if per_record_callback:
                    produce(topic, value, key, on_delivery=on_delivery)
                else:
                    produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0
    seconds = time.perf_counter() - start
    assert failed == 0, f"bare loop: {failed} of {len(records)} failed"
    return len(records) / seconds


def produce_process(bootstrap: str, topic: str, dlq: str, count: int,
                    *rate: str) -> tuple[float, float]:  # fmt: skip
    """`orders-tui produce` as a process: (seconds from start to exit, its CPU seconds)."""
    start = time.perf_counter()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [sys.executable, "-m", "orders_tui", "produce", "-b", bootstrap, "--topic", topic,
         "--dlq-topic", dlq, "-n", str(count), "--json", *rate],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    seconds = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads(out)
    assert summary["delivered"] == count, summary
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return seconds, cpu


def orders_tui_produce(bootstrap: str, topic: str, dlq: str, count: int) -> float:
    """Orders a second, process start to exit."""
    return count / produce_process(bootstrap, topic, dlq, count)[0]


def achieved_rate(bootstrap: str, topic: str, partitions: int, count: int) -> float:
    """Orders a second between the first and the last record's timestamp."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-rate",
                       "enable.auto.commit": False})  # fmt: skip
    reader.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    stamps: list[int] = []
    while len(stamps) < count:
        stamps += [m.timestamp()[1] for m in reader.consume(10_000, 1.0) if not m.error()]
    reader.close()
    return (count - 1) / ((max(stamps) - min(stamps)) / 1000)


def rate_run(bootstrap: str, partitions: int, rate: int, seconds: float) -> tuple[float, float]:
    """(the rate achieved, CPU seconds of the process), `seconds` at `rate`."""
    topics = fresh_topics(bootstrap, partitions, "bench-rate")
    count = int(rate * seconds) + 1
    _, cpu = produce_process(bootstrap, topics.topic, topics.dlq_topic, count, "--rate", str(rate))
    return achieved_rate(bootstrap, topics.topic, partitions, count), cpu


def cpu_per_10k(cpu: float, startup: float, count: int) -> float:
    return max(0.0, cpu - startup) / count * 10_000


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0], default_count=300_000, rounds=3,
        extra=[("--rate-seconds", {"type": float, "default": 10.0})],
    )  # fmt: skip
    bootstrap, count = args.bootstrap_servers, args.count
    records = pre_encoded(count)
    runs = {
        "bare (keys, no call per record)": lambda t: bare_loop(bootstrap, t.topic, records, False),
        "bare + on_delivery per record": lambda t: bare_loop(bootstrap, t.topic, records, True),
        "orders-tui produce (process start to exit)": lambda t: orders_tui_produce(
            bootstrap, t.topic, t.dlq_topic, count
        ),
    }
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(args.rounds + 1):  # round 0 warms up the broker and the caches
        for name, run in runs.items():
            rate = run(fresh_topics(bootstrap, args.partitions, "bench-produce"))
            if round_:
                rates[name].append(rate)
    rows = [(name, statistics.median(r)) for name, r in rates.items()]
    title = f"produce {count:,} orders, {args.partitions} partitions, median of {args.rounds}"
    report(title, rows, baseline="bare (keys, no call per record)")
    report(title, rows, baseline="bare + on_delivery per record")
    topics = fresh_topics(bootstrap, args.partitions, "bench-cpu")
    startup = statistics.median(
        produce_process(bootstrap, topics.topic, topics.dlq_topic, 1)[1] for _ in range(3)
    )
    full = statistics.median(
        cpu_per_10k(produce_process(bootstrap, topics.topic, topics.dlq_topic, count)[1],
                    startup, count)
        for _ in range(3)
    )  # fmt: skip
    print(f"CPU per 10,000 orders, start-up ({startup:.2f} s) taken off: full speed "
          f"{full:.3f} s")  # fmt: skip
    print(f"--rate held over {args.rate_seconds:g} s (from the records' timestamps)")
    for rate in (100, 3_000, 50_000):
        achieved, cpu = rate_run(bootstrap, args.partitions, rate, args.rate_seconds)
        per_10k = cpu_per_10k(cpu, startup, int(rate * args.rate_seconds) + 1)
        print(f"  --rate {rate:<8,} achieved {achieved:>10,.0f} orders/s "
              f"{(achieved / rate - 1) * 100:+5.1f} %   CPU {per_10k:.3f} s per 10,000 "
              f"= {per_10k / full:.1f}x full speed (target <= 1.5)")  # fmt: skip


if __name__ == "__main__":
    main()
