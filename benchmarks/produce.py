"""`orders-tui produce` against a bare confluent-kafka loop, in one run.

Both produce the same number of orders to fresh topics with the same producer settings
(idempotent, linger 5 ms) and wait for every delivery report. The bare loop sends values
encoded beforehand, so it measures the client alone; the ratio is what orders-tui's
order generation, Avro encoding and bookkeeping cost on top. Target: ratio >= 0.5.

    python benchmarks/produce.py [-b HOST:PORT] [-n 200000]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from _common import fresh_topics, parse_args, report
from confluent_kafka import KafkaError, Producer

from orders_tui.domain.codec import encode
from orders_tui.domain.order import OrderFactory
from orders_tui.kafka.producer import PRODUCER_DEFAULTS


def bare_loop(bootstrap: str, topic: str, count: int) -> float:
    factory = OrderFactory(1)
    records = [(o.orderId, encode(o)) for o in (factory() for _ in range(count))]
    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_DEFAULTS})
    delivered = 0

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        nonlocal delivered
        delivered += err is None

    start = time.perf_counter()
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush()
    seconds = time.perf_counter() - start
    assert delivered == count, f"bare loop delivered {delivered} of {count}"
    return count / seconds


def orders_tui_produce(bootstrap: str, topic: str, dlq: str, count: int) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "orders_tui", "produce", "-b", bootstrap, "--topic", topic,
         "--dlq-topic", dlq, "-n", str(count), "--json"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    summary = json.loads(out)
    assert summary["delivered"] == count, summary
    return summary["rate"]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    bare = fresh_topics(args.bootstrap_servers, args.partitions, "bench-bare")
    ours = fresh_topics(args.bootstrap_servers, args.partitions, "bench-produce")
    bare_rate = bare_loop(args.bootstrap_servers, bare.topic, args.count)
    ours_rate = orders_tui_produce(args.bootstrap_servers, ours.topic, ours.dlq_topic, args.count)
    report(
        f"produce {args.count:,} orders, {args.partitions} partitions",
        [
            ("bare confluent-kafka (pre-encoded values)", bare_rate),
            ("orders-tui produce", ours_rate),
        ],
        baseline="bare confluent-kafka (pre-encoded values)",
    )


if __name__ == "__main__":
    main()
