"""`orders-tui` without a command: the dashboard, its engine in a child process."""

from __future__ import annotations

import argparse
import sys

from orders_tui.cli.options import engine_config
from orders_tui.cli.output import PROG
from orders_tui.kafka.config import KafkaSettings


def run(args: argparse.Namespace, settings: KafkaSettings) -> int:
    from confluent_kafka.admin import AdminClient

    from orders_tui.kafka.config import make_client
    from orders_tui.kafka.engine_config import EngineOptions
    from orders_tui.kafka.remote import EngineProcess
    from orders_tui.ui.app import OrdersApp

    # A bad -X / -F property is an error here, on one line, not a notice inside the app.
    make_client(AdminClient, settings.client_config())
    options = EngineOptions(
        engine_config(args),
        batch_size=args.batch_size,
        rate=args.rate,
        max_replays=args.max_replays,
        partitions=args.partitions,
        seed=args.seed,
    )
    engine = EngineProcess(settings, options=options)
    engine.start()
    app = OrdersApp(engine)
    try:
        app.run()
    finally:
        engine.stop()
    if engine.view().ended is not None:
        from orders_tui.visible import visible

        first, *log_lines = engine.view().ended.splitlines()
        print(f"{PROG}: {visible(first)}", file=sys.stderr)
        for line in log_lines:
            print(f"  {visible(line)}", file=sys.stderr)
    return app.return_code or 0
