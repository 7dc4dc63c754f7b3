"""`orders-tui watch`: the dashboard over a running fleet, without joining its group."""

from __future__ import annotations

import argparse

from orders_tui.cli.options import (
    add_connection_flags,
    add_dashboard_flags,
    add_fleet_watch_flags,
)
from orders_tui.kafka.config import KafkaSettings


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "watch",
        help="the dashboard over a running fleet, without joining its group",
        description="Open the dashboard over headless workers (`orders-tui consume "
        "--headless`) without joining their consumer group or consuming for it: the panes "
        "follow the topics as a reader, Aggregates sums the members' status records and "
        "lists each member, lag comes from the group's commits. `space` pauses or resumes "
        "every member; `p` and `P` produce as in the dashboard.",
    )
    add_fleet_watch_flags(p)
    p.add_argument(
        "--read-only",
        action="store_true",
        help="keys that act are off: p, P, space, r, and the workbench's redrive and export "
        "(what `serve` runs unless --allow-actions)",
    )
    add_dashboard_flags(p)
    p.set_defaults(run=run)
    add_connection_flags(p, top_level=False)


def run(args: argparse.Namespace, settings: KafkaSettings) -> int:
    from confluent_kafka.admin import AdminClient

    from orders_tui.domain.rules import FailureRules
    from orders_tui.kafka.config import make_client
    from orders_tui.kafka.engine_config import EngineConfig, EngineOptions
    from orders_tui.kafka.observer import Observer
    from orders_tui.ui.app import OrdersApp

    make_client(AdminClient, settings.client_config())
    config = EngineConfig(
        group=args.group,
        rules=FailureRules(max_retries=args.max_retries),
        retry_topic_prefix=args.retry_topic_prefix,
        schema_id=args.schema_id,
        status_topic=args.status_topic,
        control_topic=args.control_topic,
    )
    options = EngineOptions(
        config,
        batch_size=args.batch_size,
        rate=args.rate,
        max_replays=args.max_replays,
        partitions=args.partitions,
        seed=args.seed,
    )
    OrdersApp(Observer(settings, options=options), read_only=args.read_only).run()
    return 0
