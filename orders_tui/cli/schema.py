"""`orders-tui schema check` and `schema register`: a candidate Order schema against the
schema registry's compatibility rule for the subject, before any producer meets it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from orders_tui import json_output
from orders_tui.cli.options import add_connection_flags
from orders_tui.errors import UserError
from orders_tui.kafka.config import KafkaSettings
from orders_tui.visible import visible

INCOMPATIBLE = 1  # exit status of a check that fails


def _registry(settings: KafkaSettings):  # -> Registry, imported late: 0.2 s to load
    from orders_tui.kafka.registry import Registry

    if settings.registry is None:
        raise UserError(
            "`schema` needs a registry: add --schema-registry URL (or SCHEMA_REGISTRY_URL)"
        )
    return Registry(settings.registry)


def _schema_text(path: str | None) -> tuple[str, str]:
    """The candidate's text, and how to name it: --file, else schemas/order.avsc."""
    from orders_tui.kafka.registry import order_schema_text

    if path is None:
        return order_schema_text(), "schemas/order.avsc"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--file {path}: cannot read it ({exc.strerror})") from None
    try:
        json.loads(text)
    except ValueError as exc:
        raise UserError(f"--file {path}: not a JSON Avro schema ({exc})") from None
    return text, path


def run_check(args: argparse.Namespace, settings: KafkaSettings) -> int:
    registry = _registry(settings)
    text, name = _schema_text(args.file)
    result = registry.check(settings.registry.subject_for(settings.topic), text)
    if args.json:
        print(
            json_output.dumps(
                {
                    "schema": name,
                    "compatible": result.compatible,
                    "subject": result.subject,
                    "rule": result.rule,
                    "against": result.against,
                    "reasons": result.reasons,
                }
            )
        )
    elif result.compatible:
        print(
            f"compatible: {name} may be registered under {result.subject} (rule "
            f"{result.rule}, checked against {result.against})"
        )
    else:
        print(
            f"incompatible: {name} breaks the {result.rule} rule of {result.subject} "
            f"(checked against {result.against}):"
        )
        for reason in result.reasons or ["the registry gave no reason"]:
            print(f"  - {visible(settings.redact(reason))}")  # the registry's words
    return 0 if result.compatible else INCOMPATIBLE


def run_register(args: argparse.Namespace, settings: KafkaSettings) -> int:
    registry = _registry(settings)
    text, name = _schema_text(args.file)
    registered = registry.register(settings.registry.subject_for(settings.topic), text)
    if args.json:
        print(
            json_output.dumps(
                {
                    "schema": name,
                    "id": registered.schema_id,
                    "subject": registered.subject,
                    "version": registered.version,
                }
            )
        )
    else:
        print(
            f"{name}: schema id {registered.schema_id}, {registered.subject} v{registered.version}"
        )
    return 0


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "schema",
        help="check or register an Order schema in the schema registry",
        description="The Order schema and the schema registry (--schema-registry). "
        "`check` tests a candidate against the subject's compatibility rule and says what "
        "breaks (exit 1); `register` registers it (refused when it breaks the rule).",
    )
    actions = p.add_subparsers(title="schema commands", metavar="ACTION", required=True)
    for name, run, what in (
        ("check", run_check, "test a schema against the subject's compatibility rule"),
        ("register", run_register, "register a schema under the subject"),
    ):
        action = actions.add_parser(name, help=what, description=what + ".")
        action.add_argument(
            "--file", metavar="FILE", help="an Avro schema (.avsc); default schemas/order.avsc"
        )
        action.add_argument("--json", action="store_true", help="print one JSON object")
        action.set_defaults(run=run)
        add_connection_flags(action, top_level=False)
    add_connection_flags(p, top_level=False)
