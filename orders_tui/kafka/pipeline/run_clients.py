"""The run's Kafka clients: a consumer set and a delivery (producer) made with the
pipeline's callbacks, the consumers' bound to their generation so that a replaced one
no longer touches the pipeline's state."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from orders_tui.errors import KafkaRefused
from orders_tui.kafka.access import is_authorization_failure, not_authorized_text
from orders_tui.kafka.clients import KafkaClients
from orders_tui.kafka.consumer_set import ConsumerSet, level_instance_id
from orders_tui.kafka.delivery import Delivery, ProducerFailed
from orders_tui.kafka.member_watch import MemberWatch
from orders_tui.kafka.pipeline.checkpoint import Checkpoint
from orders_tui.kafka.pipeline.client_errors import ClientErrors
from orders_tui.kafka.pipeline.connection import Connection
from orders_tui.kafka.pipeline.rebalance import Rebalance
from orders_tui.kafka.pipeline.run_state import RunState
from orders_tui.kafka.pipeline.tuning import CLASSIC_PROTOCOL_ONLY, CONSUMER_DEFAULTS

# Answers of a transaction coordinator that is not there yet (a fresh broker creates and
# loads __transaction_state first), not of a failure.
COORDINATOR_NOT_READY = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    }
)


def _give_up(consumer: Consumer, partitions: list[TopicPartition]) -> None:
    """A replaced consumer's rebalance callback: it gives its partitions up, nothing more."""
    with contextlib.suppress(KafkaException):
        consumer.incremental_unassign(partitions)


class RunClients:
    def __init__(
        self,
        state: RunState,
        clients: KafkaClients,
        checkpoint: Checkpoint,
        rebalance: Rebalance,
        connection: Connection,
        errors: ClientErrors,
        member_watch: MemberWatch,
    ) -> None:
        self.state = state
        self.clients = clients
        self.checkpoint = checkpoint
        self.rebalance = rebalance
        self.connection = connection
        self.errors = errors
        self.member_watch = member_watch
        self._generation: object | None = None  # the current consumers' (see current)

    def make_consumer(self) -> ConsumerSet:
        state = self.state
        defaults = CONSUMER_DEFAULTS
        if state.settings.properties.get("group.protocol") == "consumer":
            # KIP-848: the broker assigns and times sessions; librdkafka refuses a client
            # that sets either ("not supported for group.protocol=consumer").
            defaults = {k: v for k, v in defaults.items() if k not in CLASSIC_PROTOCOL_ONLY}
        self._generation = object()
        config = state.settings.client_config(
            **{
                **defaults,
                **state.delivery.consumer_settings,
                "group.id": state.config.group,
                "group.instance.id": state.instance_id,
                "error_cb": self.current(self.connection.on_error),
                "stats_cb": self.current(self.connection.on_stats),
                "on_commit": self.current(self.checkpoint.on_commit),
            }
        )
        return self.clients.consumers(config, self.levels())

    def retire(self) -> None:
        """From now on the current consumers' callbacks are ignored."""
        self._generation = None

    def current(
        self,
        callback: Callable[..., None],
        replaced: Callable[..., None] | None = None,
    ) -> Callable[..., None]:
        """`callback` for the consumers being made; once they are replaced, `replaced`
        instead (or nothing): a replaced consumer closes on a thread of its own, and its
        callbacks (a fencing, a revoke, lost partitions) ran there against the new
        consumer's state: it forgot partitions the new one held, and their orders waited
        for good (1,040 missing after a broker restart)."""
        generation = self._generation

        def call(*args: object) -> None:
            if self._generation is generation:
                callback(*args)
            elif replaced is not None:
                replaced(*args)

        return call

    def levels(self) -> list[list[str]]:
        """The topics of each consumer: the source; then retry topic n with the old shared
        retry topic n it may drain (see consumer_set)."""
        state = self.state
        shared = state.config.shared_retry_topics(state.settings.topic)
        retries = [[retry, *shared[n : n + 1]] for n, retry in enumerate(state.retry_topics)]
        return [[state.settings.topic], *retries]

    def subscribe(self) -> None:
        state = self.state
        state.joined_at = time.monotonic()
        rebalance = self.rebalance
        state.consumer.subscribe(
            state.topics,
            on_assign=self.current(rebalance.on_assign, _give_up),
            on_revoke=self.current(rebalance.on_revoke, _give_up),
            on_lost=self.current(rebalance.on_lost, _give_up),
        )
        self.member_watch.expect(self._member_ids(), time.monotonic())

    def _member_ids(self) -> set[str]:
        """The group.instance.id of each consumer that subscribed (a level with a topic
        to read)."""
        reading = set(self.state.topics)
        levels = [n for n, topics in enumerate(self.levels()) if reading.intersection(topics)]
        return {level_instance_id(self.state.instance_id, n) for n in levels}

    def make_delivery(self) -> Delivery:
        return self.checkpoint.new_delivery(
            self.clients.producer,
            self.errors.on_refused,
            self.connection.on_producer_error,
            self.connection.on_stats,
        )

    def begin(self) -> None:
        """Initialise transactions, waiting for the broker as long as it takes."""
        state = self.state
        while not state.stopping.is_set():
            try:
                state.delivery.begin(timeout=2.0)
                return
            except KafkaException as exc:
                error = exc.args[0]
                if is_authorization_failure(error):
                    raise KafkaRefused(
                        not_authorized_text(
                            state.settings, error, "Write", state.delivery.transactional_id
                        )
                        + "; or run with --at-least-once"
                    ) from None
                if error.fatal() or not error.retriable():
                    raise KafkaRefused(
                        f"cannot start a transaction ({error.str()}): the cluster must allow "
                        "transactions (or run with --at-least-once)"
                    ) from None
                if error.code() in COORDINATOR_NOT_READY:
                    # Expected on a fresh broker: its transaction state topic is made and
                    # loaded at the first transactional producer's start.
                    text = (
                        "waiting for the transaction coordinator (a new broker takes a few seconds)"
                    )
                else:
                    text = f"waiting for Kafka to start a transaction: {error.str()}"
                state.reports.report("begin", text, error=True)
                with contextlib.suppress(ProducerFailed):  # fatal: the next begin says so
                    state.delivery.poll(0)  # its error callback tells of an outage

    def poll_producer(self, timeout: float) -> None:
        try:
            self.state.delivery.poll(timeout)
        except ProducerFailed as exc:
            self.state.producer_broken = self.state.producer_broken or str(exc)
