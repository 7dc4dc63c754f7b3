"""The reference for `orders-tui consume --headless`'s process CPU: the same work written
by hand with confluent-kafka and fastavro alone, as a careful engineer would.

It consumes the source topic in a consumer group (read_committed, no auto-commit),
decodes each order with fastavro, applies the default price rules to the first attempt
(5.0 <= price <= 50.0: a copy to the first retry topic with the retry headers; above
1000.0: a copy to the DLQ with the failure headers) and commits those writes together
with the source offsets in one transaction every 100 ms (send_offsets_to_transaction).
It stops once it has read COUNT records and committed them. `benchmarks/process_cpu.py`
runs it as a process of its own, beside the pipeline, on the same backlog.

    python benchmarks/reference_process.py BOOTSTRAP TOPIC DLQ_TOPIC RETRY_TOPIC COUNT
"""

from __future__ import annotations

import io
import json
import sys
import time
import uuid
from pathlib import Path

import fastavro
from confluent_kafka import Consumer, Producer

COMMIT_EVERY = 0.1
SCHEMA = fastavro.parse_schema(
    json.loads((Path(__file__).parent.parent / "schemas" / "order.avsc").read_text())
)


def main(bootstrap: str, topic: str, dlq_topic: str, retry_topic: str, count: int) -> None:
    run = uuid.uuid4().hex[:8]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-reference-{run}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.queue.backoff.ms": 5,  # as the pipeline: librdkafka's 1 s starves it
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": f"bench-reference-{run}",
            "linger.ms": 50,  # as the pipeline's writer: batches fill between commits
            "delivery.report.only.error": True,
        }
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    consumer.subscribe([topic])
    source = topic.encode()
    seen, last_commit = 0, time.monotonic()
    reader, schema = fastavro.schemaless_reader, SCHEMA
    while seen < count:
        for msg in consumer.consume(1000, 0.1):
            if msg.error() is not None:
                continue
            seen += 1
            price = reader(io.BytesIO(msg.value()), schema, None)["price"]
            if 5.0 <= price <= 50.0:
                now_ms = time.time_ns() // 1_000_000
                headers = [
                    ("error_reason", b"downstream unavailable for price %.2f" % price),
                    ("retry_attempts", b"1"),
                    ("retry_due", b"%d" % (now_ms + 500)),
                    ("retry_first_failure", b"%d" % now_ms),
                    ("original_topic", source),
                    ("original_partition", b"%d" % msg.partition()),
                    ("original_offset", b"%d" % msg.offset()),
                    ("original_timestamp", b"%d" % msg.timestamp()[1]),
                    ("retry_group", b"bench"),
                ]
                producer.produce(retry_topic, msg.value(), msg.key(), headers=headers)
            elif price > 1000.0:
                headers = [
                    ("error_reason", b"price %.2f is above 1000.00" % price),
                    ("error_type", b"permanent"),
                    ("original_topic", source),
                    ("original_partition", b"%d" % msg.partition()),
                    ("original_offset", b"%d" % msg.offset()),
                    ("original_timestamp", b"%d" % msg.timestamp()[1]),
                    ("timestamp", b"%d" % (time.time_ns() // 1_000_000)),
                    ("attempts", b"1"),
                    ("consumer_group", b"bench"),
                ]
                producer.produce(dlq_topic, msg.value(), msg.key(), headers=headers)
        producer.poll(0)
        if time.monotonic() - last_commit >= COMMIT_EVERY or seen >= count:
            offsets = consumer.position(consumer.assignment())
            producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
            producer.begin_transaction()
            last_commit = time.monotonic()
    consumer.close()


if __name__ == "__main__":
    bootstrap, topic, dlq_topic, retry_topic, count = sys.argv[1:6]
    main(bootstrap, topic, dlq_topic, retry_topic, int(count))
