"""`orders-tui`: the dashboard, and headless subcommands over the same engine."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from orders_tui import __version__
from orders_tui.errors import UserError
from orders_tui.kafka.config import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_DLQ_TOPIC,
    DEFAULT_TOPIC,
    KafkaSettings,
)

if TYPE_CHECKING:
    from orders_tui.kafka.producer import OrderProducer, ProduceResult

PROG = "orders-tui"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text}")
    return value


def _add_connection_flags(parser: argparse.ArgumentParser, top_level: bool) -> None:
    """Flags every command takes. On subcommands their defaults are suppressed, so a flag
    given before the subcommand (`orders-tui -b host produce`) is not overwritten."""

    def default(value: object) -> object:
        return value if top_level else argparse.SUPPRESS

    group = parser.add_argument_group("Kafka connection (every command)")
    group.add_argument(
        "-b",
        "--bootstrap-servers",
        metavar="HOST:PORT",
        default=default(os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP),
        help=f"brokers to connect to (env KAFKA_BOOTSTRAP_SERVERS; default {DEFAULT_BOOTSTRAP})",
    )
    group.add_argument(
        "--topic", default=default(DEFAULT_TOPIC), help="orders topic (default orders)"
    )
    group.add_argument(
        "--dlq-topic",
        default=default(DEFAULT_DLQ_TOPIC),
        help="dead-letter topic (default orders-dlq)",
    )
    group.add_argument(
        "-X",
        dest="properties",
        metavar="KEY=VALUE",
        action="append",
        default=default([]),
        help="librdkafka property, repeatable (e.g. -X security.protocol=SASL_SSL)",
    )
    group.add_argument(
        "-F",
        dest="properties_files",
        metavar="FILE",
        action="append",
        default=default([]),
        help="librdkafka properties file (key=value lines), applied before -X",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),
        help="show librdkafka's log on stderr",
    )


def _add_produce(sub: argparse._SubParsersAction) -> None:
    from orders_tui.domain.codec import WireFormat

    p = sub.add_parser(
        "produce",
        help="produce a batch of random orders",
        description="Produce random orders (uuid key, Faker product, price 5.0-1500.0) as "
        "Avro to the orders topic, wait for every delivery report, print a summary.",
    )
    p.add_argument("-n", "--count", type=_positive_int, default=15, help="orders (default 15)")
    p.add_argument("--seed", type=int, help="random seed: the same seed gives the same orders")
    p.add_argument("--rate", type=_positive_float, help="orders per second (default unlimited)")
    p.add_argument(
        "--format",
        dest="wire_format",
        choices=[f.value for f in WireFormat],
        default=WireFormat.SCHEMALESS.value,
        help="wire format (default schemaless; container is the original demo's)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--partitions",
        type=_positive_int,
        default=3,
        help="partitions for topics this command creates (default 3)",
    )
    p.set_defaults(run=_run_produce)
    _add_connection_flags(p, top_level=False)


def _run_produce(args: argparse.Namespace, settings: KafkaSettings) -> int:
    from orders_tui.domain.codec import WireFormat
    from orders_tui.kafka.producer import OrderProducer
    from orders_tui.kafka.topics import ensure_topics

    ensure_topics(settings, [settings.topic, settings.dlq_topic], args.partitions)
    producer = OrderProducer(settings, WireFormat(args.wire_format), seed=args.seed)
    show_progress = not args.json and sys.stderr.isatty() and args.count > 0
    if show_progress:
        result = _produce_with_progress_bar(producer, args)
    else:
        result = producer.produce(args.count, rate=args.rate)
    if args.json:
        print(json.dumps(result.to_dict()))
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


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_produce]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A terminal dashboard for Kafka order pipelines: produce Avro orders, "
        "watch them consumed, retried and dead-lettered. Without a subcommand it opens the "
        "dashboard.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_connection_flags(parser, top_level=True)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        from orders_tui.kafka.config import librdkafka_log

        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
        librdkafka_log.propagate = True
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        return 2
    try:
        settings = KafkaSettings.from_flags(
            args.bootstrap_servers,
            args.topic,
            args.dlq_topic,
            args.properties_files,
            args.properties,
        )
        return run(args, settings)
    except UserError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
