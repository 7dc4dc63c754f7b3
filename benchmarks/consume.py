"""The headless pipeline against a bare confluent-kafka loop, over one backlog.

Loads a backlog of orders (default 200,000, `orders-tui produce`'s price mix: a third
above 1000.0, so a third go to the DLQ), then measures over the same backlog:

- bare: `consume(1000)` + fastavro schemaless decode; no rules, no offsets, no DLQ;
- bare, orders-tui's decoder: the same loop decoding with `orders_tui.domain.codec`, as
  the pipeline does: the true limit for this pipeline;
- bare + DLQ writes: the same loop, and every order above 1000.0 also written to a DLQ
  topic with nine headers, the way the pipeline writes it; no rules, no offsets. Not a
  target: it shows what the DLQ writes alone cost the raw client on this machine;
- pipeline: `Pipeline.run`, the engine behind `orders-tui consume --headless`: decode,
  rules, retries through the retry topics (backoff 0 here, so retry work is counted and
  waiting is not), retry and DLQ writes committed in transactions with the offsets (the
  default), or acknowledged then offsets stored (`--at-least-once`).

With --schema-registry URL, the same orders in Confluent framing are read twice more by
the pipeline: with the schema id known (--schema-id, no registry), and through the
registry (the id's schema fetched once, then cached). Target: registry >= 0.9 of known.

Each is timed the same way: from the moment it asks for its first record (the bare loop's
subscribe, the pipeline's start: both join a group) to its last order done. Target:
pipeline >= 0.6 of bare. The pipeline also runs with rules that fail
nothing, which shows what the DLQ writes cost.

    python benchmarks/consume.py [-b HOST:PORT] [-n 200000] [--rounds 3] [--schema-registry URL]
"""

from __future__ import annotations

import io
import statistics
import threading
import time
import uuid
from dataclasses import replace

import fastavro
from _common import fresh_topics, parse_args, report
from confluent_kafka import Consumer, Producer

from orders_tui.domain.codec import _PARSED, DEFAULT_SCHEMA_ID, WireFormat, decode
from orders_tui.domain.retry import Backoff
from orders_tui.domain.rules import FailureRules
from orders_tui.kafka.config import KafkaSettings, RegistrySettings
from orders_tui.kafka.delivery import WRITER_PRODUCER
from orders_tui.kafka.engine_config import EngineConfig
from orders_tui.kafka.pipeline import CONSUMER_DEFAULTS, Pipeline
from orders_tui.kafka.producer import PRODUCER_DEFAULTS, OrderProducer
from orders_tui.kafka.registry import Registry
from orders_tui.kafka.topics import ensure_topics

WATCH_EVERY = 0.01  # seconds
LOCAL_SCHEMA = "pipeline, Confluent framing, id known"
THROUGH_REGISTRY = "pipeline, Confluent framing, via the registry"
NEVER = 1e12  # a price threshold no order reaches (thresholds must be finite)


def bare_loop(
    bootstrap: str, topic: str, count: int, dlq_topic: str | None = None, ours: bool = False
) -> float:
    # Only the DLQ reference gets a producer: an idle one's threads would slow the bare loop.
    producer = (
        Producer({"bootstrap.servers": bootstrap, **PRODUCER_DEFAULTS, **WRITER_PRODUCER})
        if dlq_topic
        else None
    )
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-bare-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.queue.backoff.ms": CONSUMER_DEFAULTS["fetch.queue.backoff.ms"],
        }
    )
    start = time.time()
    consumer.subscribe([topic])
    seen = 0
    schemaless_reader = fastavro.schemaless_reader
    while seen < count:
        messages = consumer.consume(1000, 0.5)
        for msg in messages:
            if msg.error() is None:
                if ours:
                    price = decode(msg.value()).price
                else:
                    price = schemaless_reader(io.BytesIO(msg.value()), _PARSED, None)["price"]
                seen += 1
                if producer is not None and price > 1000.0:
                    headers = [
                        ("error_reason", b"price %.2f is above 1000.00" % price),
                        ("error_type", b"permanent"),
                        ("original_topic", topic.encode()),
                        ("original_partition", b"%d" % msg.partition()),
                        ("original_offset", b"%d" % msg.offset()),
                        ("original_timestamp", b"%d" % msg.timestamp()[1]),
                        ("timestamp", b"%d" % (time.time_ns() // 1_000_000)),
                        ("attempts", b"1"),
                        ("consumer_group", b"bench"),
                    ]
                    producer.produce(dlq_topic, msg.value(), msg.key(), headers=headers)
        if producer is not None:
            producer.poll(0)
    if producer is not None:
        producer.flush()
    seconds = time.time() - start
    consumer.close()
    return count / seconds


def pipeline_run(
    settings: KafkaSettings,
    count: int,
    rules: FailureRules,
    exactly_once: bool = True,
    schema_id: int = DEFAULT_SCHEMA_ID,
) -> float:
    """The pipeline on this thread, as `consume --headless` runs it; a watcher thread
    takes the times. It looks every 10 ms: waking up more often costs the pipeline GIL
    hand-overs (polling every 2 ms took a tenth off its rate), and 10 ms is under 1 % of
    a run."""
    config = EngineConfig(
        group=f"bench-pipeline-{uuid.uuid4().hex[:8]}",
        rules=rules,
        backoff=Backoff(base=0),
        exactly_once=exactly_once,
        schema_id=schema_id,
    )
    pipeline = Pipeline(settings, config)
    stats = pipeline.stats
    times: list[float] = []

    def watch() -> None:
        while stats.processed + stats.dead_lettered < count:
            time.sleep(WATCH_EVERY)
        times.append(time.time())
        pipeline.stop()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    pipeline.run()
    watcher.join()
    return count / (times[0] - stats.started)  # started: before it subscribes


def confluent_backlog(settings: KafkaSettings, count: int, registry_url: str, partitions: int):
    """The same orders in Confluent framing, with the id the registry gave our schema: on
    topics of their own, read once with that id known (--schema-id), once through the
    registry (settings with it)."""
    framed = fresh_topics(settings.bootstrap_servers, partitions, "bench-consume-registry")
    framed = replace(framed, registry=RegistrySettings(registry_url))
    schema_id = Registry(framed.registry).register_order_schema(framed.topic).schema_id
    result = OrderProducer(framed, WireFormat.CONFLUENT, seed=1, schema_id=schema_id).produce(count)
    assert result.delivered == count, result
    return framed, schema_id


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], rounds=3, extra=[
        ("--schema-registry", {"metavar": "URL", "help": "also time Confluent-framed orders "
                               "decoded through this registry against the same with the id "
                               "known (scripts/registry-local start prints one)"}),
    ])  # fmt: skip
    settings = fresh_topics(args.bootstrap_servers, args.partitions, "bench-consume")
    result = OrderProducer(settings, seed=1).produce(args.count)
    assert result.delivered == args.count, result
    bare_dlq_topic = f"{settings.dlq_topic}-bare"
    ensure_topics(settings, [bare_dlq_topic], args.partitions)
    runs = {
        "bare consume(1000) + fastavro decode": lambda: bare_loop(
            args.bootstrap_servers, settings.topic, args.count
        ),
        "bare consume(1000) + orders-tui's decoder": lambda: bare_loop(
            args.bootstrap_servers, settings.topic, args.count, ours=True
        ),
        "bare + the same DLQ writes (reference)": lambda: bare_loop(
            args.bootstrap_servers, settings.topic, args.count, bare_dlq_topic
        ),
        "orders-tui pipeline, default rules": lambda: pipeline_run(
            settings, args.count, FailureRules()
        ),
        "orders-tui pipeline, default rules, --at-least-once": lambda: pipeline_run(
            settings, args.count, FailureRules(), exactly_once=False
        ),
        # Every order through a retry topic once: half recover, half are dead-lettered.
        "orders-tui pipeline, every order retried": lambda: pipeline_run(
            settings, args.count, FailureRules(0, NEVER, NEVER, max_retries=1)
        ),
        "orders-tui pipeline, rules that fail nothing": lambda: pipeline_run(
            settings, args.count, FailureRules(0, 0, NEVER)
        ),
    }
    if args.schema_registry:
        framed, schema_id = confluent_backlog(settings, args.count, args.schema_registry,
                                              args.partitions)  # fmt: skip
        runs[LOCAL_SCHEMA] = lambda: pipeline_run(
            replace(framed, registry=None), args.count, FailureRules(), schema_id=schema_id
        )
        runs[THROUGH_REGISTRY] = lambda: pipeline_run(framed, args.count, FailureRules())
    # A warm-up run, not counted: a freshly started broker's JVM has not compiled its
    # produce path yet, and takes several times the CPU for the first DLQ writes.
    pipeline_run(settings, args.count, FailureRules())
    # Interleaved rounds, each figure the median: two cores shared with the broker make
    # single runs swing by a third.
    rates: dict[str, list[float]] = {name: [] for name in runs}
    cpus: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            cpu_before = time.thread_time()
            rates[name].append(run())
            cpus[name].append(time.thread_time() - cpu_before)
    medians = [(name, statistics.median(values)) for name, values in rates.items()]
    title = f"consume a backlog of {args.count:,} orders, {args.partitions} partitions"
    report(title, medians, baseline="bare consume(1000) + fastavro decode")
    report(title, medians, baseline="bare consume(1000) + orders-tui's decoder")
    if args.schema_registry:
        framed_rows = [(name, rate) for name, rate in medians
                       if name in (LOCAL_SCHEMA, THROUGH_REGISTRY)]  # fmt: skip
        report(title + ", Confluent framing", framed_rows, baseline=LOCAL_SCHEMA)
    # Each loop runs on this thread; its CPU time bounds its rate from above, as no other
    # thread can share the Python work.
    print("  CPU seconds of the thread running the loop (start-up included):")
    for name, values in cpus.items():
        print(f"    {name:<42} {statistics.median(values):5.2f}")


if __name__ == "__main__":
    main()
