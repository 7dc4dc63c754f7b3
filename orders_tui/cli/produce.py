"""`orders-tui produce`: a batch of random orders, with a summary."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from orders_tui import json_output
from orders_tui.cli.options import (
    add_connection_flags,
    add_partitions_flag,
    add_schema_id_flag,
    count,
    per_second,
)
from orders_tui.cli.output import PROG, say
from orders_tui.errors import UserError
from orders_tui.kafka.config import KafkaSettings

if TYPE_CHECKING:
    from orders_tui.kafka.producer import OrderProducer, ProduceResult


def add(sub: argparse._SubParsersAction) -> None:
    from orders_tui.domain.codec import WireFormat

    p = sub.add_parser(
        "produce",
        help="produce a batch of random orders",
        description="Produce random orders (uuid key, Faker product, price 5.0-1500.0) as "
        "Avro to the orders topic, wait for every delivery report, print a summary.",
    )
    p.add_argument("-n", "--count", type=count, default=15, help="orders (default 15)")
    p.add_argument("--seed", type=int, help="random seed: the same seed gives the same orders")
    p.add_argument("--rate", type=per_second, help="orders per second (default unlimited)")
    p.add_argument(
        "--format",
        dest="wire_format",
        choices=[f.value for f in WireFormat],
        help="wire format (default schemaless, or confluent with --schema-registry; container "
        "is the original demo's)",
    )
    add_schema_id_flag(p, written=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_partitions_flag(p)
    p.set_defaults(run=run)
    add_connection_flags(p, top_level=False)


def run(args: argparse.Namespace, settings: KafkaSettings) -> int:
    from orders_tui.domain.codec import WireFormat
    from orders_tui.kafka.producer import OrderProducer
    from orders_tui.kafka.topics import ensure_topics

    wire_format, schema_id = WireFormat(args.wire_format or WireFormat.SCHEMALESS), args.schema_id
    if settings.registry is not None:
        if args.wire_format not in (None, WireFormat.CONFLUENT):
            raise UserError(
                f"--format {args.wire_format} and --schema-registry: with a registry, orders "
                "are written in Confluent framing (--format confluent)"
            )
        from orders_tui.kafka.registry import Registry

        registered = Registry(settings.registry).register_order_schema(settings.topic)
        wire_format, schema_id = WireFormat.CONFLUENT, registered.schema_id
        if not args.json:
            say(
                f"schema id {schema_id}: {registered.subject} v{registered.version} at "
                f"{settings.registry.shown_url}"
            )
    ensure_topics(settings, [settings.topic, settings.dlq_topic], args.partitions, on_mismatch=say)
    producer = OrderProducer(
        settings, wire_format, seed=args.seed, schema_id=schema_id, paced=args.rate is not None
    )
    show_progress = not args.json and sys.stderr.isatty() and args.count > 0
    if show_progress:
        result = _produce_with_progress_bar(producer, args)
    else:
        result = producer.produce(args.count, rate=args.rate)
    if args.json:
        print(json_output.dumps(result.to_dict()))
    else:
        print(
            f"delivered {result.delivered}, failed {result.failed} to {settings.topic} "
            f"in {result.seconds:.2f} s ({result.rate:,.0f} orders/s)"
        )
    if result.failed:
        print(f"{PROG}: {result.failed} orders failed: {result.first_error}", file=sys.stderr)
        return 1
    return 0


def _produce_with_progress_bar(producer: OrderProducer, args: argparse.Namespace) -> ProduceResult:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("producing", total=args.count)
        return producer.produce(
            args.count,
            rate=args.rate,
            progress=lambda delivered, failed: bar.update(task, completed=delivered + failed),
        )
