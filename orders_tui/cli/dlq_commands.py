"""`orders-tui dlq`, `dlq triage` and `dlq replay`: the DLQ workbench on the command line."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from orders_tui import json_output
from orders_tui.domain.dlq_filter import Filter, FilterError, parse_filter
from orders_tui.domain.failure import header_number
from orders_tui.domain.order import Order
from orders_tui.domain.triage import Triage
from orders_tui.errors import UserError
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.decoders import make_decoder
from orders_tui.kafka.dlq import DlqEntry, ScanProgress, dlq_reader, scan_dlq
from orders_tui.visible import visible


def where(args: argparse.Namespace) -> Filter:
    try:
        return parse_filter(args.where or "")
    except FilterError as exc:
        raise UserError(f"--where: {exc}") from None


def _require_topic(settings: KafkaSettings) -> None:
    from orders_tui.kafka.topics import cluster_metadata

    if settings.dlq_topic not in cluster_metadata(settings).topics:
        raise UserError(f"topic {settings.dlq_topic!r} does not exist (nothing dead-lettered yet?)")


def _cancel_on_signals() -> threading.Event:
    """SIGINT/SIGTERM end a scan or a redrive cleanly (a redrive commits what it sent)."""
    cancel = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: cancel.set())
    return cancel


class _Progress:
    """A one-line progress indicator on stderr for long scans, when it is a terminal."""

    def __init__(self, progress: ScanProgress, what: str) -> None:
        self.progress, self.what = progress, what
        self.shown = sys.stderr.isatty()
        self.printed = False
        self._next = time.monotonic() + 0.5

    def tick(self) -> None:
        if self.shown and time.monotonic() >= self._next:
            self.printed = True
            total = max(self.progress.total, 1)
            print(
                f"\r{self.what}: {self.progress.read:,} of ~{total:,} "
                f"({100 * self.progress.read // total}%)",
                end="",
                file=sys.stderr,
            )
            self._next = time.monotonic() + 0.5

    def done(self) -> None:
        if self.printed:
            print("\r\x1b[K", end="", file=sys.stderr)


def run_list(args: argparse.Namespace, settings: KafkaSettings) -> int:
    """`orders-tui dlq`: entries the filter picks, one a line or as JSON."""
    picked = where(args)
    _require_topic(settings)
    decoder = make_decoder(settings, args.schema_id)
    consumer = dlq_reader(settings)
    progress = ScanProgress()
    shown = 0
    try:
        for entry in scan_dlq(
            consumer,
            settings.dlq_topic,
            decoder=decoder,
            progress=progress,
            cancel=_cancel_on_signals(),
        ):
            if not picked(entry):
                continue
            print(json_output.dumps(entry.to_json()) if args.json else format_dlq_line(entry))
            shown += 1
            if args.limit is not None and shown >= args.limit:
                break
    finally:
        consumer.close()
    return 0


def format_dlq_line(entry: DlqEntry) -> str:
    """One entry on a line, every field from the record escaped (`visible`): text
    values quoted, bytes that are not UTF-8 as 0x..., an absent key or value as null."""

    def shown(value: bytes | None) -> str:
        if value is None:
            return "null"
        try:
            return "'" + visible(value.decode("utf-8")).replace("'", "\\'") + "'"
        except UnicodeDecodeError:
            return "0x" + value.hex()

    order = entry.decoded()
    body = (
        f"order {shown(order.orderId.encode())} {shown(order.product.encode())} {order.price:.2f}"
        if isinstance(order, Order)
        else "undecodable value " + ("null" if entry.value is None else f"0x{entry.value.hex()}")
    )

    def header(name: str, value: bytes | None) -> str:
        number = header_number(name, value)  # Spring's binary numbers, as digits
        return f"{visible(name)}={shown(value) if number is None else number}"

    headers = " ".join(header(name, value) for name, value in entry.headers)
    return (
        f"{visible(entry.topic)}[{entry.partition}]@{entry.offset} key={shown(entry.key)} "
        f"{body} {headers}"
    )


def run_triage(args: argparse.Namespace, settings: KafkaSettings) -> int:
    """`orders-tui dlq triage`: counts by type, reason, original partition, over time."""
    picked = where(args)
    _require_topic(settings)
    consumer = dlq_reader(settings)
    progress = ScanProgress()
    bar = _Progress(progress, "reading the DLQ")
    triage = Triage()
    decoder = make_decoder(settings, args.schema_id)
    try:
        for entry in scan_dlq(
            consumer,
            settings.dlq_topic,
            decoder=decoder,
            progress=progress,
            cancel=_cancel_on_signals(),
        ):
            if picked(entry):
                triage.add(entry.failure, entry.timestamp_ms)
            bar.tick()
    finally:
        bar.done()
        consumer.close()
    if args.json:
        print(json_output.dumps(triage.to_dict()))
    else:
        print(format_triage(triage))
    return 0


SPARK = " ▁▂▃▄▅▆▇█"


def _when(ms: int | None) -> str:
    return "-" if ms is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def format_triage(triage: Triage, reasons: int = 20) -> str:
    total = triage.total
    lines = [
        f"{total.count:,} entries · first {_when(total.first_ms)} · last {_when(total.last_ms)}"
    ]
    if not total.count:
        return lines[0]
    lines.append("")
    lines.append(f"{'count':>9}  {'first':19}  {'last':19}  type")
    for error_type, group in sorted(triage.by_type.items(), key=lambda i: -i[1].count):
        lines.append(
            f"{group.count:>9,}  {_when(group.first_ms)}  {_when(group.last_ms)}  "
            f"{visible(error_type)}"
        )
    lines.append("")
    lines.append(f"{'count':>9}  reason (numbers as #)")
    ranked = sorted(triage.by_reason.items(), key=lambda i: -i[1].count)
    for (error_type, reason), group in ranked[:reasons]:
        lines.append(f"{group.count:>9,}  [{visible(error_type)}] {visible(reason)}")
    if len(ranked) > reasons:
        lines.append(f"{'':>9}  … and {len(ranked) - reasons} more reasons (--json has all)")
    lines.append("")
    lines.append(
        "by original partition: "
        + ", ".join(
            f"{visible(name)} {count:,}" for name, count in triage.by_partition.most_common(12)
        )
    )
    counts, start, end = triage.over_time()
    top = max(counts) or 1
    spark = "".join(SPARK[round(c / top * (len(SPARK) - 1))] for c in counts)
    lines.append(f"over time: {_when(start)} {spark} {_when(end)} (max {top:,} a bar)")
    return "\n".join(lines)


def run_replay(args: argparse.Namespace, settings: KafkaSettings) -> int:
    """`orders-tui dlq replay`: a bulk redrive, resumable (see kafka/redrive)."""
    from orders_tui.domain.replay_targets import TargetRefused
    from orders_tui.kafka.redrive import Redrive, redrive_name, replay_targets

    picked = where(args)
    _require_topic(settings)
    # Another target is another redrive: a rerun with --allow-topic sends what the first
    # run left, instead of resuming past it.
    routing = f"\0to={args.to}" if args.to else ""
    routing += "".join(f"\0allow={topic}" for topic in sorted(set(args.allow_topic)))
    name = args.name or redrive_name(settings.dlq_topic, (args.where or "") + routing)
    progress = ScanProgress()
    try:
        targets = replay_targets(settings, tuple(args.allow_topic), args.to)
    except TargetRefused as exc:
        raise UserError(f"--to/--allow-topic: {exc}") from None
    redrive = Redrive(
        settings,
        picked,
        name,
        args.max_replays,
        targets,
        rate=args.rate,
        dry_run=args.dry_run,
        decoder=make_decoder(settings, args.schema_id),
        progress=progress,
        cancel=_cancel_on_signals(),
    )
    summary = redrive.run()
    if args.json:
        print(json_output.dumps(summary.to_dict()))
    else:
        print(summary.describe())
    return 0


def run_redrives(args: argparse.Namespace, settings: KafkaSettings) -> int:
    """`orders-tui dlq redrives`: each redrive, and what became of what it sent."""
    from orders_tui.kafka.redrive_log import redrive_outcomes

    _require_topic(settings)
    outcomes = redrive_outcomes(settings, args.group)
    if args.json:
        print(json_output.dumps([o.to_dict() for o in outcomes]))
    elif not outcomes:
        print(f"no redrives of {settings.dlq_topic} yet")
    else:
        print("\n".join(o.describe() for o in outcomes))
    return 0
