"""`orders-tui serve`: the fleet's dashboard in browsers."""

from __future__ import annotations

import argparse
import os

from orders_tui.cli.options import add_connection_flags, add_fleet_watch_flags, number
from orders_tui.cli.output import say
from orders_tui.kafka.config import KafkaSettings


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="the fleet's dashboard (`watch`) in a browser",
        description="Serve `orders-tui watch` to browsers (textual-serve): each visit opens "
        "its own observer, which never joins the consumer group. Read-only unless "
        "--allow-actions; on 127.0.0.1 unless --host says otherwise. Kafka properties (-F, "
        "-X) reach the sessions through a file only you may read, removed at once, never "
        "the browser.",
    )
    web = p.add_argument_group("web")
    web.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default %(default)s; 0.0.0.0: every interface, with a warning)",
    )
    web.add_argument(
        "--port",
        type=number(int, 1, maximum=65535),
        default=8000,
        help="port (default %(default)s)",
    )
    web.add_argument(
        "--auth-token",
        default=os.environ.get("ORDERS_TUI_AUTH_TOKEN") or None,
        metavar="TOKEN",
        help="required of every visit: /?token=TOKEN or Authorization: Bearer TOKEN (env "
        "ORDERS_TUI_AUTH_TOKEN, which keeps it out of the process list; default: none)",
    )
    web.add_argument(
        "--allow-actions",
        action="store_true",
        help="let visitors produce (p, P), pause the fleet (space), replay and redrive",
    )
    web.add_argument(
        "--public-url",
        metavar="URL",
        help="where browsers reach this server (default: from --host); requests "
        "for other host names are refused",
    )
    web.add_argument(
        "--max-sessions",
        type=number(int, 1),
        default=10,
        metavar="N",
        help="browser sessions open at once (default %(default)s); more get a page "
        "saying the server is full",
    )
    add_fleet_watch_flags(p)
    p.set_defaults(run=run)
    add_connection_flags(p, top_level=False)


def run(args: argparse.Namespace, settings: KafkaSettings) -> int:
    from orders_tui.kafka.topics import ensure_topics
    from orders_tui.web import serve

    # Unreachable or refused: one line now, not an error page in each visitor's browser.
    ensure_topics(settings, [settings.topic, settings.dlq_topic], args.partitions, on_mismatch=say)
    watch_flags = [
        "--group",
        args.group,
        "--max-retries",
        str(args.max_retries),
        "--retry-topic-prefix",
        args.retry_topic_prefix,
        "--schema-id",
        str(args.schema_id),
        "--status-topic",
        args.status_topic,
        "--control-topic",
        args.control_topic,
    ]
    serve(
        settings,
        watch_flags,
        args.host,
        args.port,
        args.allow_actions,
        args.auth_token,
        args.public_url,
        args.max_sessions,
    )
    return 0
