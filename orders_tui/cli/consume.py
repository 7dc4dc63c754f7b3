"""`orders-tui consume --headless`: the pipeline without the dashboard, a summary at exit."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable

from orders_tui import json_output
from orders_tui.cli.options import add_connection_flags, add_pipeline_flags, engine_config, seconds
from orders_tui.cli.output import say
from orders_tui.errors import UserError
from orders_tui.kafka.config import KafkaSettings


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "consume",
        help="run the pipeline without the dashboard",
        description="Consume orders in a consumer group, apply the failure rules, retry "
        "transient failures with backoff, dead-letter what fails for good, commit only "
        "what is done. Prints a summary at exit.",
    )
    p.add_argument(
        "--headless",
        action="store_true",
        required=True,
        help="run without the dashboard (required: the dashboard is `orders-tui`)",
    )
    p.add_argument(
        "--idle-exit",
        type=seconds,
        metavar="SECONDS",
        help="exit once nothing arrived for this long and the group has committed the "
        "end of every partition (exit 3, naming what is left, when it cannot)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument(
        "--outcomes",
        metavar="FILE",
        help="append a JSON line per finished order (processed or dead-lettered) to FILE "
        "(- for stdout), written before its offset is committed",
    )
    add_pipeline_flags(p)
    p.set_defaults(run=run)
    add_connection_flags(p, top_level=False)


def run(args: argparse.Namespace, settings: KafkaSettings) -> int:
    import signal

    pipeline = None

    def on_signal(*_: object) -> None:
        # Before the pipeline runs nothing was consumed, so nothing is left to commit: a
        # stop then is a clean exit (SIGTERM in the first moments killed the process
        # with the default action, rc -15).
        if pipeline is None:
            raise SystemExit(0)
        pipeline.stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)

    from orders_tui.kafka.pipeline import Pipeline
    from orders_tui.kafka.topics import ensure_topics

    config = engine_config(args)
    outcome_log = open_outcome_log(args.outcomes)
    ensure_topics(settings, [settings.topic, settings.dlq_topic], args.partitions, on_mismatch=say)
    pipeline = Pipeline(settings, config, on_finished=outcome_log, on_report=say)
    stats = pipeline.run(idle_exit=args.idle_exit)
    summary = stats.summary(time.time())
    drain = pipeline.drain
    if drain is not None:
        summary["drained"] = drain.drained
    if args.json:
        print(json_output.dumps(summary))
    else:
        print(format_summary(summary), file=sys.stderr if args.outcomes == "-" else sys.stdout)
    if drain is not None and drain.describe():
        say(drain.describe())
    return 0 if drain is None or drain.drained else NOT_DRAINED


NOT_DRAINED = 3  # --idle-exit found partitions left to consume


def open_outcome_log(path: str | None) -> Callable[[list], None] | None:
    if path is None:
        return None
    try:
        stream = sys.stdout if path == "-" else open(path, "a", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise UserError(f"--outcomes {path}: cannot open it ({exc.strerror})") from None
    if stream is not sys.stdout and _ends_mid_line(path):
        # A killed run left its last line cut short; its orders were not committed and
        # come again. A new line keeps that fragment from spoiling the next record.
        stream.write("\n")

    def write(finished: list) -> None:
        stream.write("".join(json_output.dumps(dataclasses.asdict(f)) + "\n" for f in finished))
        stream.flush()

    return write


def _ends_mid_line(path: str) -> bool:
    try:
        with open(path, "rb") as existing:
            if existing.seek(0, os.SEEK_END) == 0:
                return False
            existing.seek(-1, os.SEEK_END)
            return existing.read(1) != b"\n"
    except OSError:  # a pipe or a device: nothing to look back at
        return False


def format_summary(s: dict) -> str:
    by_type = ", ".join(f"{k} {v}" for k, v in s["dead_lettered_by_type"].items())
    lines = [
        f"consumed {s['consumed']} · processed {s['processed']} (recovered {s['recovered']}) · "
        f"dead-lettered {s['dead_lettered']}"
        + (f" ({by_type})" if by_type else "")
        + f" · retry attempts {s['retry_attempts']}",
    ]
    if s["connection_losses"] or s["commit_failures"]:
        lines.append(
            f"connection lost {s['connection_losses']} times ({s['seconds_disconnected']} s) · "
            f"commit failures {s['commit_failures']}"
        )
    if s["processed"]:
        lines.append(
            f"prices: total {s['total_price']:,.2f} · average {s['average_price']:,.2f} · "
            f"min {s['min_price']:,.2f} · max {s['max_price']:,.2f}"
        )
    if s.get("foreign_retries_skipped"):
        lines.append(f"skipped {s['foreign_retries_skipped']:,} retry records of other groups")
    if s.get("schemas_seen"):  # Confluent framing: which writers' versions came by
        from orders_tui.visible import visible

        seen = " · ".join(f"{visible(label)} {n:,}" for label, n in s["schemas_seen"].items())
        lines.append(f"schemas: {seen}")
    lines.append(f"{s['seconds']:.1f} s · {s['orders_per_second']:,.1f} orders/s")
    return "\n".join(lines)
