"""Options several commands share, each declared once with its environment default,
and the argparse types that refuse what would switch a rule or a limit off."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from orders_tui.errors import UserError
from orders_tui.kafka.config import DEFAULT_BOOTSTRAP, DEFAULT_DLQ_TOPIC, DEFAULT_TOPIC

if TYPE_CHECKING:
    from orders_tui.kafka.engine_config import EngineConfig


def number(
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


count = number(int, 0)

seconds = number(float, 0)

per_second = number(float, 0, above=True)

price = number(float)


def schema_id(text: str) -> int:
    value = count(text)
    if value > 2**31 - 1:
        raise argparse.ArgumentTypeError(f"expected a schema id up to {2**31 - 1}, got {text}")
    return value


def add_schema_id_flag(
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
        type=schema_id,
        # A string default goes through `type`, so a bad env value is reported like a flag.
        default=argparse.SUPPRESS
        if suppress
        else os.environ.get("ORDERS_TUI_SCHEMA_ID") or str(DEFAULT_SCHEMA_ID),
        metavar="ID",
        help=f"{what} (env ORDERS_TUI_SCHEMA_ID; default {DEFAULT_SCHEMA_ID})",
    )


def add_partitions_flag(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--partitions",
        type=number(int, 1),
        default=None,
        help="partitions for topics this command creates (default 3); an existing topic "
        "with another count is said, not changed",
    )


def add_connection_flags(parser: argparse.ArgumentParser, top_level: bool) -> None:
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
        type=number(int, 1),
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


def add_fleet_flags(parser: argparse._ActionsContainer) -> None:
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


def add_dashboard_flags(parser: argparse.ArgumentParser) -> None:
    dashboard = parser.add_argument_group("dashboard")
    dashboard.add_argument(
        "--batch-size", type=number(int, 1), default=15, help="orders per `p` (default 15)"
    )
    dashboard.add_argument(
        "--rate",
        type=per_second,
        default=10.0,
        help="orders per second of the `P` stream (default 10)",
    )
    dashboard.add_argument(
        "--max-replays",
        type=count,
        default=3,
        help="how often one entry may be replayed from the DLQ (default 3)",
    )
    dashboard.add_argument("--seed", type=int, help="random seed for produced orders")


def add_pipeline_flags(parser: argparse.ArgumentParser) -> None:
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
        type=count,
        default=rules.max_retries,
        help="retries of a transient failure before the DLQ (default %(default)s)",
    )
    group.add_argument(
        "--retry-backoff",
        type=seconds,
        default=backoff.base,
        metavar="SECONDS",
        help="first retry delay; doubles each retry, with jitter (default %(default)s)",
    )
    group.add_argument(
        "--retry-backoff-max",
        type=seconds,
        default=backoff.cap,
        metavar="SECONDS",
        help="the longest retry delay (default %(default)s)",
    )
    group.add_argument(
        "--transient-min",
        type=price,
        default=rules.transient_min,
        metavar="PRICE",
        help="transient band, lower bound (default %(default)s)",
    )
    group.add_argument(
        "--transient-max",
        type=price,
        default=rules.transient_max,
        metavar="PRICE",
        help="transient band, upper bound (default %(default)s)",
    )
    group.add_argument(
        "--permanent-above",
        type=price,
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
    add_schema_id_flag(group, written=False)
    add_partitions_flag(group)
    add_fleet_flags(group)


def engine_config(args: argparse.Namespace) -> EngineConfig:
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


def add_group_retry_flags(parser: argparse._ActionsContainer, whose: str) -> None:
    """A group and what names its retry topics: for commands that read them."""
    from orders_tui.domain.rules import FailureRules
    from orders_tui.kafka.config import DEFAULT_GROUP

    parser.add_argument(
        "--group", default=DEFAULT_GROUP, help=f"{whose} consumer group (default %(default)s)"
    )
    parser.add_argument(
        "--max-retries",
        type=count,
        default=FailureRules().max_retries,
        help=f"{whose} retries, for the retry topics' names (default %(default)s)",
    )
    parser.add_argument(
        "--retry-topic-prefix",
        default="",
        metavar="PREFIX",
        help=f"{whose} retry topic prefix (default: <topic>-<group>-retry)",
    )


def add_fleet_watch_flags(p: argparse.ArgumentParser) -> None:
    """Which fleet to watch: `watch` and `serve`."""
    fleet = p.add_argument_group("fleet")
    add_group_retry_flags(fleet, "the workers'")
    add_schema_id_flag(fleet, written=False)
    add_partitions_flag(fleet)
    add_fleet_flags(fleet)
