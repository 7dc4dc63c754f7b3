"""`orders-tui`: the dashboard, and headless subcommands over the same engine."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from orders_tui import __version__, json_output
from orders_tui.errors import UserError
from orders_tui.kafka.config import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_DLQ_TOPIC,
    DEFAULT_TOPIC,
    KafkaSettings,
)

if TYPE_CHECKING:
    from orders_tui.kafka.engine_config import EngineConfig
    from orders_tui.kafka.producer import OrderProducer, ProduceResult

PROG = "orders-tui"


def _number(
    convert: type[int] | type[float],
    minimum: float = -math.inf,
    above: bool = False,
    maximum: float = math.inf,
) -> Callable[[str], int | float]:
    """An argparse type: a finite number (whole with int) of at least, or above,
    `minimum`, and at most `maximum`. NaN and infinity are refused: either would switch a
    rule or a limit off (`--permanent-above nan` lets every price through)."""
    kind = "a whole number" if convert is int else "a number"
    if maximum < math.inf:
        bound = f" from {minimum:g} to {maximum:g}"
    elif above:
        bound = f" above {minimum:g}"
    else:
        bound = f" {minimum:g} or more" if minimum > -math.inf else ""

    def parse(text: str) -> int | float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if not (value > minimum if above else value >= minimum) or value > maximum:
            raise argparse.ArgumentTypeError(f"expected {kind}{bound}, got {text}")
        return value

    return parse


_count = _number(int, 0)
_seconds = _number(float, 0)
_per_second = _number(float, 0, above=True)
_price = _number(float)


def _schema_id(text: str) -> int:
    value = _count(text)
    if value > 2**31 - 1:
        raise argparse.ArgumentTypeError(f"expected a schema id up to {2**31 - 1}, got {text}")
    return value


def _add_schema_id_flag(
    parser: argparse._ActionsContainer, written: bool, suppress: bool = False
) -> None:
    from orders_tui.domain.codec import DEFAULT_SCHEMA_ID

    what = (
        "the schema id --format confluent writes"
        if written
        else "the Confluent schema id read as schemas/order.avsc; records framed with another "
        "id go to the DLQ, their writer schema unknown"
    )
    parser.add_argument(
        "--schema-id",
        type=_schema_id,
        # A string default goes through `type`, so a bad env value is reported like a flag.
        default=argparse.SUPPRESS
        if suppress
        else os.environ.get("ORDERS_TUI_SCHEMA_ID") or str(DEFAULT_SCHEMA_ID),
        metavar="ID",
        help=f"{what} (env ORDERS_TUI_SCHEMA_ID; default {DEFAULT_SCHEMA_ID})",
    )


def _add_partitions_flag(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--partitions",
        type=_number(int, 1),
        default=None,
        help="partitions for topics this command creates (default 3); an existing topic "
        "with another count is said, not changed",
    )


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
    registry = parser.add_argument_group("schema registry (every command)")
    registry.add_argument(
        "--schema-registry",
        metavar="URL",
        default=default(os.environ.get("SCHEMA_REGISTRY_URL", "")),
        help="Confluent-compatible schema registry (env SCHEMA_REGISTRY_URL; e.g. "
        "http://localhost:8081, or Apicurio's http://HOST:PORT/apis/ccompat/v7): produce "
        "registers the Order schema and writes Confluent framing; consumers read each "
        "record with its writer schema. Client properties, credentials among them: -X "
        "schema.registry.basic.auth.user.info=USER:PASSWORD (never printed)",
    )
    registry.add_argument(
        "--schema-subject",
        metavar="SUBJECT",
        default=default(os.environ.get("ORDERS_TUI_SCHEMA_SUBJECT", "")),
        help="subject the Order schema is registered under (env ORDERS_TUI_SCHEMA_SUBJECT; "
        "default <topic>-value, the TopicNameStrategy)",
    )
    group.add_argument(
        "--replication-factor",
        type=_number(int, 1),
        metavar="N",
        # A string default goes through `type`, so a bad value in the environment is a
        # bad flag, said as one.
        default=default(os.environ.get("ORDERS_TUI_REPLICATION_FACTOR") or -1),
        help="replicas of each topic orders-tui creates (env ORDERS_TUI_REPLICATION_FACTOR; "
        "default: the broker's default.replication.factor)",
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
    p.add_argument("-n", "--count", type=_count, default=15, help="orders (default 15)")
    p.add_argument("--seed", type=int, help="random seed: the same seed gives the same orders")
    p.add_argument("--rate", type=_per_second, help="orders per second (default unlimited)")
    p.add_argument(
        "--format",
        dest="wire_format",
        choices=[f.value for f in WireFormat],
        help="wire format (default schemaless, or confluent with --schema-registry; container "
        "is the original demo's)",
    )
    _add_schema_id_flag(p, written=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_partitions_flag(p)
    p.set_defaults(run=_run_produce)
    _add_connection_flags(p, top_level=False)


def _run_produce(args: argparse.Namespace, settings: KafkaSettings) -> int:
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
            _say(
                f"schema id {schema_id}: {registered.subject} v{registered.version} at "
                f"{settings.registry.shown_url}"
            )
    ensure_topics(settings, [settings.topic, settings.dlq_topic], args.partitions, on_mismatch=_say)
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


def _add_fleet_flags(parser: argparse._ActionsContainer) -> None:
    from orders_tui.kafka.status import CONTROL_TOPIC, STATUS_TOPIC

    parser.add_argument(
        "--status-topic",
        default=os.environ.get("ORDERS_TUI_STATUS_TOPIC") or STATUS_TOPIC,
        metavar="TOPIC",
        help="compacted topic of the members' status records (env ORDERS_TUI_STATUS_TOPIC; "
        f"default {STATUS_TOPIC})",
    )
    parser.add_argument(
        "--control-topic",
        default=os.environ.get("ORDERS_TUI_CONTROL_TOPIC") or CONTROL_TOPIC,
        metavar="TOPIC",
        help="compacted topic of fleet commands (pause, resume) the members obey (env "
        f"ORDERS_TUI_CONTROL_TOPIC; default {CONTROL_TOPIC})",
    )


def _add_dashboard_flags(parser: argparse.ArgumentParser) -> None:
    dashboard = parser.add_argument_group("dashboard")
    dashboard.add_argument(
        "--batch-size", type=_number(int, 1), default=15, help="orders per `p` (default 15)"
    )
    dashboard.add_argument(
        "--rate",
        type=_per_second,
        default=10.0,
        help="orders per second of the `P` stream (default 10)",
    )
    dashboard.add_argument(
        "--max-replays",
        type=_count,
        default=3,
        help="how often one entry may be replayed from the DLQ (default 3)",
    )
    dashboard.add_argument("--seed", type=int, help="random seed for produced orders")


def _add_pipeline_flags(parser: argparse.ArgumentParser) -> None:
    """Consumer group, failure rules and retry schedule: `consume` and the dashboard."""
    from orders_tui.domain.retry import Backoff
    from orders_tui.domain.rules import FailureRules
    from orders_tui.kafka.config import DEFAULT_GROUP

    rules, backoff = FailureRules(), Backoff()
    group = parser.add_argument_group("pipeline")
    group.add_argument(
        "--group", default=DEFAULT_GROUP, help="consumer group (default %(default)s)"
    )
    group.add_argument(
        "--max-retries",
        type=_count,
        default=rules.max_retries,
        help="retries of a transient failure before the DLQ (default %(default)s)",
    )
    group.add_argument(
        "--retry-backoff",
        type=_seconds,
        default=backoff.base,
        metavar="SECONDS",
        help="first retry delay; doubles each retry, with jitter (default %(default)s)",
    )
    group.add_argument(
        "--retry-backoff-max",
        type=_seconds,
        default=backoff.cap,
        metavar="SECONDS",
        help="the longest retry delay (default %(default)s)",
    )
    group.add_argument(
        "--transient-min",
        type=_price,
        default=rules.transient_min,
        metavar="PRICE",
        help="transient band, lower bound (default %(default)s)",
    )
    group.add_argument(
        "--transient-max",
        type=_price,
        default=rules.transient_max,
        metavar="PRICE",
        help="transient band, upper bound (default %(default)s)",
    )
    group.add_argument(
        "--permanent-above",
        type=_price,
        default=rules.permanent_above,
        metavar="PRICE",
        help="prices above this fail for good (default %(default)s)",
    )
    group.add_argument(
        "--retry-topic-prefix",
        default="",
        metavar="PREFIX",
        help="retry n waits in topic PREFIX-n (default: <topic>-<group>-retry: a retry "
        "topic belongs to one group)",
    )
    group.add_argument(
        "--at-least-once",
        action="store_true",
        help="write retry and DLQ records without transactions: faster by 4-8 %%, but a "
        "crash may write one twice (default: exactly-once, in transactions with the offsets)",
    )
    group.add_argument(
        "--instance-id",
        default=os.environ.get("ORDERS_TUI_INSTANCE_ID", ""),
        metavar="ID",
        help="static group member id, stable across restarts (env ORDERS_TUI_INSTANCE_ID; "
        "default: <host>-<n>, the lowest n no other pipeline of the group here holds)",
    )
    _add_schema_id_flag(group, written=False)
    _add_partitions_flag(group)
    _add_fleet_flags(group)


def _engine_config(args: argparse.Namespace) -> EngineConfig:
    from orders_tui.domain.retry import Backoff
    from orders_tui.domain.rules import FailureRules
    from orders_tui.kafka.engine_config import EngineConfig

    try:
        rules = FailureRules(
            args.transient_min, args.transient_max, args.permanent_above, args.max_retries
        )
        backoff = Backoff(base=args.retry_backoff, cap=args.retry_backoff_max)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return EngineConfig(
        group=args.group,
        rules=rules,
        backoff=backoff,
        exactly_once=not args.at_least_once,
        retry_topic_prefix=args.retry_topic_prefix,
        instance_id=args.instance_id,
        schema_id=args.schema_id,
        status_topic=args.status_topic,
        control_topic=args.control_topic,
    )


def _add_consume(sub: argparse._SubParsersAction) -> None:
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
        type=_seconds,
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
    _add_pipeline_flags(p)
    p.set_defaults(run=_run_consume)
    _add_connection_flags(p, top_level=False)


def _run_consume(args: argparse.Namespace, settings: KafkaSettings) -> int:
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

    config = _engine_config(args)
    outcome_log = _open_outcome_log(args.outcomes)
    ensure_topics(settings, [settings.topic, settings.dlq_topic], args.partitions, on_mismatch=_say)
    pipeline = Pipeline(settings, config, on_finished=outcome_log, on_report=_say)
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
        _say(drain.describe())
    return 0 if drain is None or drain.drained else NOT_DRAINED


NOT_DRAINED = 3  # --idle-exit found partitions left to consume


def _say(line: str) -> None:
    """One line on stderr, for what a person running headless should know. It may quote
    what others chose (a member id, a broker's message): control characters are shown,
    never sent to the terminal."""
    from orders_tui.visible import visible

    print(f"{PROG}: {visible(line)}", file=sys.stderr, flush=True)


def _open_outcome_log(path: str | None) -> Callable[[list], None] | None:
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


def _run_dashboard(args: argparse.Namespace, settings: KafkaSettings) -> int:
    from confluent_kafka.admin import AdminClient

    from orders_tui.kafka.config import make_client
    from orders_tui.kafka.engine import EngineOptions
    from orders_tui.kafka.remote import EngineProcess
    from orders_tui.ui.app import OrdersApp

    # A bad -X / -F property is an error here, on one line, not a notice inside the app.
    make_client(AdminClient, settings.client_config())
    options = EngineOptions(
        _engine_config(args),
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
    if engine.ended is not None:
        from orders_tui.visible import visible

        first, *log_lines = engine.ended.splitlines()
        print(f"{PROG}: {visible(first)}", file=sys.stderr)
        for line in log_lines:
            print(f"  {visible(line)}", file=sys.stderr)
    return app.return_code or 0


def _add_group_retry_flags(parser: argparse._ActionsContainer, whose: str) -> None:
    """A group and what names its retry topics: for commands that read them."""
    from orders_tui.domain.rules import FailureRules
    from orders_tui.kafka.config import DEFAULT_GROUP

    parser.add_argument(
        "--group", default=DEFAULT_GROUP, help=f"{whose} consumer group (default %(default)s)"
    )
    parser.add_argument(
        "--max-retries",
        type=_count,
        default=FailureRules().max_retries,
        help=f"{whose} retries, for the retry topics' names (default %(default)s)",
    )
    parser.add_argument(
        "--retry-topic-prefix",
        default="",
        metavar="PREFIX",
        help=f"{whose} retry topic prefix (default: <topic>-<group>-retry)",
    )


def _add_fleet_watch_flags(p: argparse.ArgumentParser) -> None:
    """Which fleet to watch: `watch` and `serve`."""
    fleet = p.add_argument_group("fleet")
    _add_group_retry_flags(fleet, "the workers'")
    _add_schema_id_flag(fleet, written=False)
    _add_partitions_flag(fleet)
    _add_fleet_flags(fleet)


def _add_watch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "watch",
        help="the dashboard over a running fleet, without joining its group",
        description="Open the dashboard over headless workers (`orders-tui consume "
        "--headless`) without joining their consumer group or consuming for it: the panes "
        "follow the topics as a reader, Aggregates sums the members' status records and "
        "lists each member, lag comes from the group's commits. `space` pauses or resumes "
        "every member; `p` and `P` produce as in the dashboard.",
    )
    _add_fleet_watch_flags(p)
    p.add_argument(
        "--read-only",
        action="store_true",
        help="keys that act are off: p, P, space, r, and the workbench's redrive and export "
        "(what `serve` runs unless --allow-actions)",
    )
    _add_dashboard_flags(p)
    p.set_defaults(run=_run_watch)
    _add_connection_flags(p, top_level=False)


def _run_watch(args: argparse.Namespace, settings: KafkaSettings) -> int:
    from confluent_kafka.admin import AdminClient

    from orders_tui.domain.rules import FailureRules
    from orders_tui.kafka.config import make_client
    from orders_tui.kafka.engine import EngineOptions
    from orders_tui.kafka.engine_config import EngineConfig
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


def _add_serve(sub: argparse._SubParsersAction) -> None:
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
        type=_number(int, 1, maximum=65535),
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
        type=_number(int, 1),
        default=10,
        metavar="N",
        help="browser sessions open at once (default %(default)s); more get a page "
        "saying the server is full",
    )
    _add_fleet_watch_flags(p)
    p.set_defaults(run=_run_serve)
    _add_connection_flags(p, top_level=False)


def _run_serve(args: argparse.Namespace, settings: KafkaSettings) -> int:
    from orders_tui.kafka.topics import ensure_topics
    from orders_tui.web import serve

    # Unreachable or refused: one line now, not an error page in each visitor's browser.
    ensure_topics(settings, [settings.topic, settings.dlq_topic], args.partitions, on_mismatch=_say)
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


def _add_schema(sub: argparse._SubParsersAction) -> None:
    from orders_tui.schema_commands import add_schema

    add_schema(sub, _add_connection_flags)


def _add_dlq(sub: argparse._SubParsersAction) -> None:
    from orders_tui import dlq_commands
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
    p.add_argument("--limit", type=_count, metavar="N", help="at most N entries")
    p.add_argument("--json", action="store_true", help="one JSON object a line (lossless)")
    _add_schema_id_flag(p, written=False)
    p.set_defaults(run=dlq_commands.run_list)
    _add_connection_flags(p, top_level=False)
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
    _add_schema_id_flag(triage, written=False, suppress=True)
    triage.set_defaults(run=dlq_commands.run_triage)
    _add_connection_flags(triage, top_level=False)

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
    replay.add_argument("--rate", type=_per_second, help="records per second (default unlimited)")
    replay.add_argument(
        "--max-replays",
        type=_count,
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
    _add_schema_id_flag(replay, written=False, suppress=True)
    replay.set_defaults(run=dlq_commands.run_replay)
    _add_connection_flags(replay, top_level=False)

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
    redrives.set_defaults(run=dlq_commands.run_redrives)
    _add_connection_flags(redrives, top_level=False)


def _add_retries(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "retries",
        help="what waits on a group's retry topics (and on the old shared ones)",
        description="Records a consumer group has not consumed yet on its retry topics "
        "(<topic>-<group>-retry-N) and on the retry topics every group shared before "
        "(<topic>-retry-N), which the group's next consume drains. Reads committed "
        "offsets; joins nothing.",
    )
    _add_group_retry_flags(p, "the group's")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    def run(args: argparse.Namespace, settings: KafkaSettings) -> int:
        from orders_tui.retry_commands import run_retries

        return run_retries(args, settings)

    p.set_defaults(run=run)
    _add_connection_flags(p, top_level=False)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_produce,
    _add_consume,
    _add_watch,
    _add_schema,
    _add_serve,
    _add_dlq,
    _add_retries,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A terminal dashboard for Kafka order pipelines: produce Avro orders, "
        "watch them consumed, retried and dead-lettered. Without a subcommand it opens the "
        "dashboard.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_connection_flags(parser, top_level=True)
    _add_pipeline_flags(parser)
    _add_dashboard_flags(parser)
    parser.set_defaults(run=_run_dashboard)
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
