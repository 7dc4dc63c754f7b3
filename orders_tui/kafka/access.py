"""Authentication and authorization failures, said as what they are and what to check.

Neither is an unreachable broker: telling a user whose password is wrong to start a
local broker sends them the wrong way. Both are permanent for this run (librdkafka
keeps retrying a failed login for ever), so the command stops with one line.
"""

from __future__ import annotations

from confluent_kafka import KafkaError

from orders_tui.errors import UserError
from orders_tui.kafka.config import KafkaSettings

AUTHENTICATION_CODES = frozenset(
    {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}
)
# An authorization error: the kind of resource refused, and the kafka-acls option for it.
AUTHORIZATION_RESOURCES = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED: ("topic", "--topic"),
    KafkaError.GROUP_AUTHORIZATION_FAILED: ("consumer group", "--group"),
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: ("transactional id", "--transactional-id"),
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: ("cluster", "--cluster"),
}


class AccessDenied(UserError):
    """The cluster would not let us in, or not do what we asked."""

    exit_code = 1


def is_authentication_failure(error: KafkaError) -> bool:
    return error.code() in AUTHENTICATION_CODES


def is_authorization_failure(error: KafkaError) -> bool:
    return error.code() in AUTHORIZATION_RESOURCES


def authentication_failed(settings: KafkaSettings, error: KafkaError) -> AccessDenied:
    mechanism = settings.effective("sasl.mechanism") or "GSSAPI (librdkafka's default)"
    return AccessDenied(
        f"Kafka at {settings.bootstrap_servers} refused to authenticate us "
        f"({error.str()}): check sasl.username and sasl.password, that sasl.mechanism "
        f"({mechanism}) is one the listener enables, and that security.protocol matches "
        "the listener (set them with -X or -F)"
    )


def not_authorized(
    settings: KafkaSettings, error: KafkaError, operation: str, name: str
) -> AccessDenied:
    return AccessDenied(not_authorized_text(settings, error, operation, name))


def not_authorized_text(
    settings: KafkaSettings, error: KafkaError, operation: str, name: str
) -> str:
    """`operation` (an ACL operation: Read, Write, Describe, Create) on the resource
    `name` of the kind `error` is about was refused: says so, naming the principal and
    the ACL that would allow it."""
    kind, option = AUTHORIZATION_RESOURCES.get(error.code(), ("topic", "--topic"))
    target = "--cluster" if option == "--cluster" else f"{option} {name}"
    who = principal(settings)
    return (
        f"not authorized to {operation.lower()} {kind} {name!r} as {who} ({error.str()}): "
        f"ask for an ACL allowing it, e.g. kafka-acls --add --allow-principal {who} "
        f"--operation {operation} {target}"
    )


def principal(settings: KafkaSettings) -> str:
    username = settings.effective("sasl.username")
    return f"User:{username}" if username else "this client's principal"
