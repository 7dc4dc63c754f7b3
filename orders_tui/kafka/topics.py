"""Reaching the broker and creating the topics a fresh cluster lacks."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata, NewTopic

from orders_tui.errors import BrokerUnreachable, UserError
from orders_tui.kafka.config import KafkaSettings, make_client

DEFAULT_PARTITIONS = 3
# A broker that refuses connections is reported after this long; one that accepts but
# does not answer, after the full timeout.
REFUSED_GRACE_SECONDS = 2.0


def admin_client(settings: KafkaSettings) -> tuple[AdminClient, list[KafkaError]]:
    errors: list[KafkaError] = []
    admin = make_client(AdminClient, settings.client_config(error_cb=errors.append))
    return admin, errors


def cluster_metadata(settings: KafkaSettings, timeout: float = 10.0) -> ClusterMetadata:
    """Metadata of the cluster, or BrokerUnreachable within `timeout` seconds."""
    admin, errors = admin_client(settings)
    return wait_for_metadata(admin, errors, settings.bootstrap_servers, timeout)


def wait_for_metadata(
    admin: AdminClient, errors: list[KafkaError], bootstrap: str, timeout: float
) -> ClusterMetadata:
    start = time.monotonic()
    deadline = start + timeout
    last_error = ""
    while True:
        try:
            return admin.list_topics(timeout=min(1.0, max(0.1, deadline - time.monotonic())))
        except KafkaException as exc:
            last_error = exc.args[0].str()
        admin.poll(0)
        fatal = [e for e in errors if e.code() != KafkaError._ALL_BROKERS_DOWN and e.fatal()]
        if fatal:
            raise BrokerUnreachable(bootstrap, fatal[0].str())
        all_down = any(e.code() == KafkaError._ALL_BROKERS_DOWN for e in errors)
        now = time.monotonic()
        if now >= deadline or (all_down and now - start >= REFUSED_GRACE_SECONDS):
            detail = errors[-1].str() if errors else last_error
            raise BrokerUnreachable(bootstrap, detail)


def ensure_topics(
    settings: KafkaSettings,
    topics: list[str],
    partitions: int = DEFAULT_PARTITIONS,
    replication_factor: int = 1,
    timeout: float = 10.0,
) -> ClusterMetadata:
    """Create the topics that do not exist yet; returns fresh cluster metadata."""
    admin, errors = admin_client(settings)
    metadata = wait_for_metadata(admin, errors, settings.bootstrap_servers, timeout)
    missing = [t for t in topics if t not in metadata.topics]
    if not missing:
        return metadata
    futures = admin.create_topics(
        [NewTopic(t, partitions, replication_factor) for t in missing],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    for topic, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:  # created by someone else
                raise UserError(f"cannot create topic {topic!r}: {error.str()}") from None
    # Metadata can lag creation by a moment; wait until every topic has its leaders.
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
