"""The DLQ workbench on a DLQ of a million entries: scan and filter time, page-back
latency, memory; against a bare confluent-kafka loop that only reads the same records.

The DLQ is written fast by this script (pre-built records with orders-tui's failure
headers, not through the pipeline). Targets (issue 12): browse with RSS under 300 MB,
a page back under 300 ms, a filter over the million in seconds.

    python benchmarks/workbench.py [-b HOST:PORT] [-n 1000000]
"""

from __future__ import annotations

import multiprocessing
import random
import resource
import statistics
import time

from _common import fresh_topics, parse_args
from confluent_kafka import Consumer, Producer, TopicPartition

from orders_tui.domain.encoding import encode
from orders_tui.domain.order import OrderFactory
from orders_tui.kafka.workbench import Workbench

REASONS = {
    "permanent": "price {price:.2f} is above the permanent-failure threshold 1000.00",
    "retries_exhausted": "retries exhausted after 4 attempts: downstream unavailable",
}


def write_dlq(bootstrap: str, topic: str, count: int) -> float:
    factory = OrderFactory(5)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50,
                         "batch.num.messages": 10_000, "compression.type": "lz4"})  # fmt: skip
    start = time.perf_counter()
    for n in range(count):
        order = factory()
        error_type = "permanent" if n % 10 else "retries_exhausted"
        headers = [
            ("error_reason", REASONS[error_type].format(price=order.price).encode()),
            ("error_type", error_type.encode()),
            ("original_topic", b"orders"),
            ("original_partition", b"%d" % (n % 3)),
            ("original_offset", b"%d" % n),
        ]
        while True:
            try:
                producer.produce(topic, encode(order), order.orderId, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush()
    return time.perf_counter() - start


def bare_read(bootstrap: str, topic: str, count: int) -> float:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-bare-read",
                         "enable.auto.commit": False})  # fmt: skip
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    start = time.perf_counter()
    read = 0
    while read < count:
        read += sum(1 for m in consumer.consume(1000, 1.0) if m.error() is None)
    seconds = time.perf_counter() - start
    consumer.close()
    return seconds


def wait_scan(workbench: Workbench, where: str) -> float:
    start = time.perf_counter()
    version = workbench.view.version
    workbench.filter(where)
    while workbench.view.version == version or workbench.view.scanning:
        time.sleep(0.01)
    return time.perf_counter() - start


def page(workbench: Workbench, start: int, count: int = 90) -> float:
    began = time.perf_counter()
    version = workbench.view.version
    workbench.show(start, count)
    while workbench.view.version == version:
        time.sleep(0.001)
    assert len(workbench.view.window) == count, len(workbench.view.window)
    return time.perf_counter() - began


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_count=1_000_000)
    settings = fresh_topics(args.bootstrap_servers, args.partitions, "bench-workbench")
    # Written by a child process, so this one's peak memory is the workbench's.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        written = pool.apply(write_dlq, (args.bootstrap_servers, settings.dlq_topic, args.count))
    print(f"writing {args.count:,} DLQ entries: {written:.1f} s")
    bare = bare_read(args.bootstrap_servers, settings.dlq_topic, args.count)
    workbench = Workbench(settings)
    workbench.start("type=nothing-matches")  # connect first; the timed scans follow
    while workbench.view.scanning or workbench.view.version < 2:
        time.sleep(0.05)
    everything = wait_scan(workbench, "")
    assert workbench.view.matched == args.count, workbench.view.matched
    first_page = page(workbench, 0)
    pages = [page(workbench, random.randrange(args.count - 90)) for _ in range(30)]
    rss_browsing = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    filtered = wait_scan(workbench, "type=retries_exhausted price>1200")
    matched = workbench.view.matched
    regex = wait_scan(workbench, 'reason~"above the .* threshold" product~Blue')
    workbench.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"bare confluent-kafka read of {args.count:,}: {bare:.1f} s "
          f"({args.count / bare:,.0f}/s)")  # fmt: skip
    for name, seconds in (("scan, no filter", everything),
                          (f"filter type=... price>1200 ({matched:,} match)", filtered),
                          ("filter reason~regex product~Blue", regex)):  # fmt: skip
        print(f"  {name:<46} {seconds:6.1f} s  {args.count / seconds:>9,.0f}/s  "
              f"ratio {bare / seconds:4.2f} of the bare read")  # fmt: skip
    print(f"  page back to a random row (90 rows): median {statistics.median(pages) * 1000:.0f}"
          f" ms, max {max(pages) * 1000:.0f} ms (target 300 ms); the first row: "
          f"{first_page * 1000:.0f} ms")  # fmt: skip
    print(
        f"  peak RSS while browsing {rss_browsing:.0f} MB, after the filters {rss:.0f} MB "
        "(target 300 MB)"
    )


if __name__ == "__main__":
    main()
