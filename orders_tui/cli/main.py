"""The `orders-tui` command: its parser, and running what it chose."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from orders_tui import __version__
from orders_tui.cli import consume, dashboard, dlq, produce, retries, schema, serve, watch
from orders_tui.cli.options import add_connection_flags, add_dashboard_flags, add_pipeline_flags
from orders_tui.cli.output import PROG
from orders_tui.errors import UserError
from orders_tui.kafka.config import KafkaSettings

SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    produce.add,
    consume.add,
    watch.add,
    schema.add,
    serve.add,
    dlq.add,
    retries.add,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A terminal dashboard for Kafka order pipelines: produce Avro orders, "
        "watch them consumed, retried and dead-lettered. Without a subcommand it opens the "
        "dashboard.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_connection_flags(parser, top_level=True)
    add_pipeline_flags(parser)
    add_dashboard_flags(parser)
    parser.set_defaults(run=dashboard.run)
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
    run = args.run
    settings: KafkaSettings | None = None
    try:
        settings = KafkaSettings.from_flags(
            args.bootstrap_servers,
            args.topic,
            args.dlq_topic,
            args.properties_files,
            args.properties,
            args.schema_registry,
            args.schema_subject,
            args.replication_factor,
        )
        return run(args, settings)
    except UserError as exc:
        message = settings.redact(str(exc)) if settings else str(exc)
        # It may quote others (a broker's or a registry's message, a file name): shown,
        # never acted on by the terminal.
        from orders_tui.visible import visible

        print(f"{PROG}: {visible(message)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left (`orders-tui dlq | head -1`): stop quietly, as a Unix tool
        # killed by SIGPIPE does. Later writes, and the flush at exit, go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_EXIT


SIGPIPE_EXIT = 141  # 128 + SIGPIPE, what a shell reports for `yes | head -1`
