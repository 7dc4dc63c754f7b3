"""Errors the user can act on: the CLI prints their message as one line, no traceback."""

from __future__ import annotations

LOCAL_BROKER_HINT = (
    "start a local broker with `scripts/kafka-local start` (or `docker compose up -d`), "
    "or point -b / KAFKA_BOOTSTRAP_SERVERS at your cluster"
)


class UserError(Exception):
    """Something the user can fix: a bad flag, a missing file, a bad property."""

    exit_code = 2


class BrokerUnreachable(UserError):
    exit_code = 1

    def __init__(self, bootstrap: str, detail: str = "", hint: str = LOCAL_BROKER_HINT) -> None:
        self.bootstrap = bootstrap
        why = f" ({detail})" if detail else ""
        super().__init__(f"cannot reach Kafka at {bootstrap}{why}: {hint}")


class KafkaRefused(UserError):
    """The cluster refused for good what the engine needed (a fatal client error, a DLQ
    record it will not take): the run stops with nothing committed past it."""

    exit_code = 1


class KafkaInterrupted(UserError):
    """Kafka stopped answering, or failed a call, partway through a job (a scan, a
    redrive): one line saying how to go on, exit 1 like any unreachable broker."""

    exit_code = 1


class CannotServe(UserError):
    """`orders-tui serve` cannot listen where it was told (the port is taken, say)."""

    exit_code = 1


class RegistryFailed(UserError):
    """The schema registry refused a schema, or could not be reached."""

    exit_code = 1
