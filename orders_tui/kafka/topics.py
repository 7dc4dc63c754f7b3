"""Reaching the broker and creating the topics a fresh cluster lacks."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata, NewTopic

from orders_tui.errors import BrokerUnreachable, UserError
from orders_tui.kafka.access import (
    authentication_failed,
    is_authentication_failure,
    is_authorization_failure,
    not_authorized,
)
from orders_tui.kafka.config import KafkaSettings, make_client

DEFAULT_PARTITIONS = 3
# A broker that refuses connections is reported after this long; one that accepts but
# does not answer, after the full timeout.
REFUSED_GRACE_SECONDS = 2.0
TLS_HINT = (
    "check that security.protocol matches the listener (SSL or SASL_SSL for TLS, PLAINTEXT "
    "or SASL_PLAINTEXT without) and, for TLS, ssl.ca.location (set them with -X or -F)"
)


def admin_client(settings: KafkaSettings) -> tuple[AdminClient, list[KafkaError]]:
    errors: list[KafkaError] = []
    # Asked about a topic by name, a broker with auto.create.topics.enable (Kafka's
    # default) creates it with its own defaults: 1 partition, whatever was asked for.
    config = settings.client_config(error_cb=errors.append, **{"allow.auto.create.topics": False})
    admin = make_client(AdminClient, config)
    return admin, errors


def cluster_metadata(settings: KafkaSettings, timeout: float = 10.0) -> ClusterMetadata:
    """Metadata of the cluster, or BrokerUnreachable within `timeout` seconds."""
    admin, errors = admin_client(settings)
    return wait_for_metadata(admin, errors, settings, timeout)


def wait_for_metadata(
    admin: AdminClient, errors: list[KafkaError], settings: KafkaSettings, timeout: float
) -> ClusterMetadata:
    """Cluster metadata; a failed login is AccessDenied at once, no answer within
    `timeout` (or refused connections for REFUSED_GRACE_SECONDS) BrokerUnreachable."""
    bootstrap = settings.bootstrap_servers
    start = time.monotonic()
    deadline = start + timeout
    last_error = ""
    while True:
        try:
            return admin.list_topics(timeout=min(1.0, max(0.1, deadline - time.monotonic())))
        except KafkaException as exc:
            last_error = exc.args[0].str()
        admin.poll(0)
        refused_login = next((e for e in errors if is_authentication_failure(e)), None)
        if refused_login is not None:
            raise authentication_failed(settings, refused_login)
        fatal = [e for e in errors if e.code() != KafkaError._ALL_BROKERS_DOWN and e.fatal()]
        if fatal:
            raise BrokerUnreachable(bootstrap, fatal[0].str())
        all_down = any(e.code() == KafkaError._ALL_BROKERS_DOWN for e in errors)
        now = time.monotonic()
        if now >= deadline or (all_down and now - start >= REFUSED_GRACE_SECONDS):
            # A failed handshake may be followed by "all brokers down": name the cause.
            handshake = next((e.str() for e in errors if _tls_failure(e.str())), "")
            if handshake:
                raise BrokerUnreachable(bootstrap, handshake, TLS_HINT)
            raise BrokerUnreachable(bootstrap, errors[-1].str() if errors else last_error)


def _tls_failure(text: str) -> bool:
    # librdkafka says "SSL handshake failed", or, when the peer hangs up first,
    # "Disconnected: SSL connection closed by peer (... in state SSL_HANDSHAKE)".
    return "SSL handshake failed" in text or "state SSL_HANDSHAKE" in text


def ensure_topics(
    settings: KafkaSettings,
    topics: list[str],
    partitions: int | None = None,
    timeout: float = 10.0,
    config: dict[str, str] | None = None,
    on_mismatch: Callable[[str], None] | None = None,
) -> ClusterMetadata:
    """Create the topics that do not exist yet, with `partitions` (DEFAULT_PARTITIONS when
    None), `settings.replication_factor` and `config`; returns fresh cluster metadata.
    When `partitions` is given, a topic that exists with another count (made earlier, by
    someone else, or by a broker's auto-creation) is said to `on_mismatch`, one line
    each: it is not changed."""
    admin, errors = admin_client(settings)
    metadata = wait_for_metadata(admin, errors, settings, timeout)
    missing = [t for t in topics if t not in metadata.topics]
    for topic in missing:
        # A listing of all topics leaves out those we may not describe; asked by name,
        # the broker says so.
        found = admin.list_topics(topic, timeout=timeout).topics.get(topic)
        if found is not None and found.error is not None and is_authorization_failure(found.error):
            raise not_authorized(settings, found.error, "Describe", topic)
    if missing:
        _create(admin, settings, missing, partitions or DEFAULT_PARTITIONS, timeout, config)
        metadata = _wait_for_leaders(admin, topics, timeout)
    if partitions is not None and on_mismatch is not None:
        for line in partition_mismatches(metadata, topics, partitions):
            on_mismatch(line)
    return metadata


def partition_mismatches(metadata: ClusterMetadata, topics: list[str], asked: int) -> list[str]:
    """A line for each topic whose partition count is not `asked`."""
    lines = []
    for topic in topics:
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or len(found.partitions) == asked:
            continue
        count = len(found.partitions)
        lines.append(
            f"topic {topic!r} has {count} partition{'s' if count != 1 else ''}, not the "
            f"{asked} asked for (it existed already: kafka-topics --alter --partitions "
            f"{asked} adds them; keys then move)"
        )
    return lines


def _create(
    admin: AdminClient,
    settings: KafkaSettings,
    topics: list[str],
    partitions: int,
    timeout: float,
    config: dict[str, str] | None,
) -> None:
    new = [
        NewTopic(t, partitions, settings.replication_factor, config=config or {}) for t in topics
    ]
    for topic, error in create_when_ready(admin, new, timeout).items():
        if is_authorization_failure(error):
            raise not_authorized(settings, error, "Create", topic)
        raise UserError(f"cannot create topic {topic!r}: {error.str()}")


def create_when_ready(admin: AdminClient, topics: list[NewTopic], timeout: float) -> dict:
    """Create `topics`, asking again for up to `timeout` seconds while the cluster cannot
    place them yet: a broker just restarted is fenced until it has caught up ("Unable to
    replicate the partition 1 time(s): All brokers are currently fenced" ended a redrive
    resumed right after a restart). The errors left, by topic; one that exists already
    (created by someone else meanwhile) is none."""
    deadline = time.monotonic() + timeout
    errors: dict[str, KafkaError] = {}
    pending = topics
    while pending:
        futures = admin.create_topics(pending, operation_timeout=timeout, request_timeout=timeout)
        retry = []
        for new in pending:
            try:
                futures[new.topic].result()
            except KafkaException as exc:
                error = exc.args[0]
                if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                not_yet = error.retriable() or "currently fenced" in error.str()
                if not_yet and time.monotonic() < deadline:
                    retry.append(new)
                else:
                    errors[new.topic] = error
        pending = retry
        if pending:
            time.sleep(0.5)
    return errors


def _wait_for_leaders(admin: AdminClient, topics: list[str], timeout: float) -> ClusterMetadata:
    """Metadata can lag creation by a moment; wait until every topic has its leaders."""
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=timeout)
        ready = all(
            t in metadata.topics
            and metadata.topics[t].error is None
            and metadata.topics[t].partitions
            and all(p.leader >= 0 for p in metadata.topics[t].partitions.values())
            for t in topics
        )
        if ready or time.monotonic() > deadline:
            return metadata
        time.sleep(0.1)


# Answers of a broker still electing leaders (just started, or a node failed over).
_LEADERLESS = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)


def watermarks(consumer: object, partition: object, timeout: float = 10.0) -> tuple[int, int]:
    """A partition's (low, high) offsets, asked again while its leader is being elected:
    right after `make run` started the broker, the dashboard's DLQ pane asked once, got
    "Not leader for partition" and stayed empty for the session (and `dlq` printed a
    traceback)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return consumer.get_watermark_offsets(partition, timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() not in _LEADERLESS or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)
