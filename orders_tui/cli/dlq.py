"""`orders-tui dlq` and its actions (`triage`, `replay`, `redrives`): the parser; what
they run is in dlq_commands, imported when one runs."""

from __future__ import annotations

import argparse

from orders_tui.cli.options import add_connection_flags, add_schema_id_flag, count, per_second
from orders_tui.cli.output import lazy


def add(sub: argparse._SubParsersAction) -> None:
    from orders_tui.kafka.config import DEFAULT_GROUP

    where_help = (
        "only entries this filter picks, e.g. 'type=permanent price>1200' or "
        "'reason~timeout or header.source=fuzzer' (syntax: README, 'Filters and other DLQ "
        "conventions'; in full: docs/dlq.md)"
    )
    p = sub.add_parser(
        "dlq",
        help="print, triage and redrive the dead-letter queue",
        description="Read the DLQ topic from the beginning, without joining a group or "
        "committing. One entry a line: coordinates, key, the decoded order (hex when the "
        "value does not decode), every header. `dlq triage` counts, `dlq replay` redrives.",
    )
    p.add_argument("--where", metavar="FILTER", help=where_help)
    p.add_argument("--limit", type=count, metavar="N", help="at most N entries")
    p.add_argument("--json", action="store_true", help="one JSON object a line (lossless)")
    add_schema_id_flag(p, written=False)
    p.set_defaults(run=lazy("orders_tui.cli.dlq_commands", "run_list"))
    add_connection_flags(p, top_level=False)
    actions = p.add_subparsers(title="dlq commands", metavar="ACTION")

    triage = actions.add_parser(
        "triage",
        help="count the DLQ by type, reason, original partition and over time",
        description="Read the whole DLQ (or what --where picks) and count it: by error "
        "type and by reason (numbers folded into #), with first and last seen, by original "
        "partition, and over time.",
    )
    # A flag given before the action (`dlq --where X triage`) is kept: the action's own
    # copies of the flags have no default to overwrite it with.
    triage.add_argument("--where", metavar="FILTER", help=where_help, default=argparse.SUPPRESS)
    triage.add_argument(
        "--json", action="store_true", help="print one JSON object", default=argparse.SUPPRESS
    )
    add_schema_id_flag(triage, written=False, suppress=True)
    triage.set_defaults(run=lazy("orders_tui.cli.dlq_commands", "run_triage"))
    add_connection_flags(triage, top_level=False)

    replay = actions.add_parser(
        "replay",
        help="redrive DLQ entries to their original topics, once each, resumably",
        description="Send the entries --where picks back to the topic named in their "
        "original-topic header (orders-tui, Spring Kafka, Kafka Connect and Kafka Streams "
        "headers are read), byte for byte, with replay_count and redrive_id headers. "
        "Transactional and resumable: run the same command again after a crash or ^C.",
    )
    replay.add_argument("--where", metavar="FILTER", help=where_help, default=argparse.SUPPRESS)
    replay.add_argument(
        "--dry-run",
        action="store_true",
        help="count what would be sent, and to which topics; send nothing",
    )
    replay.add_argument(
        "--to",
        metavar="TOPIC",
        help="send every entry to TOPIC instead of its original topic",
    )
    replay.add_argument(
        "--allow-topic",
        metavar="TOPIC",
        action="append",
        default=[],
        help="also send entries whose original topic is TOPIC (repeatable); by default "
        "only those of --topic and its retry topics are sent, others are counted",
    )
    replay.add_argument("--rate", type=per_second, help="records per second (default unlimited)")
    replay.add_argument(
        "--max-replays",
        type=count,
        default=3,
        help="skip entries already replayed this often (default 3)",
    )
    replay.add_argument(
        "--name",
        metavar="NAME",
        help="the redrive's name, which resuming uses (default: made from the "
        "DLQ topic and --where, so the same command resumes)",
    )
    replay.add_argument(
        "--json", action="store_true", help="print the summary as JSON", default=argparse.SUPPRESS
    )
    add_schema_id_flag(replay, written=False, suppress=True)
    replay.set_defaults(run=lazy("orders_tui.cli.dlq_commands", "run_replay"))
    add_connection_flags(replay, top_level=False)

    redrives = actions.add_parser(
        "redrives",
        help="each redrive: sent, dead-lettered again, processed",
        description="Every redrive of this DLQ (from its log, <dlq-topic>-redrives): how "
        "many records it sent, how many came back to the DLQ (their entries carry its "
        "redrive_id), and, once the pipeline's group has consumed them all, how many were "
        "processed.",
    )
    redrives.add_argument(
        "--group", default=DEFAULT_GROUP, help="the pipeline's consumer group (default %(default)s)"
    )
    redrives.add_argument(
        "--json", action="store_true", help="print one JSON list", default=argparse.SUPPRESS
    )
    redrives.set_defaults(run=lazy("orders_tui.cli.dlq_commands", "run_redrives"))
    add_connection_flags(redrives, top_level=False)
