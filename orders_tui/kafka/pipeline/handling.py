"""A batch of records through the routing decision: source records, then the retry
records that are due; what fails goes to the writer. A retry partition whose head is
not due, or a record waiting for the schema registry, holds its partition from there."""

from __future__ import annotations

import time

from confluent_kafka import Message, TopicPartition

from orders_tui.domain.codec import Decoder
from orders_tui.domain.offsets import PartitionOffsets
from orders_tui.domain.routing import DeadLetter, ErrorType, Processed, Routing, WaitForRegistry
from orders_tui.kafka.events import OrderState, RegistryStatus
from orders_tui.kafka.pipeline.client_errors import ClientErrors
from orders_tui.kafka.pipeline.outcome_log import OutcomeLog
from orders_tui.kafka.pipeline.records import Failed
from orders_tui.kafka.pipeline.rows import FrontEndRows
from orders_tui.kafka.pipeline.run_state import RunState
from orders_tui.kafka.pipeline.writer import Writer
from orders_tui.kafka.retry_topics import NotARetryRecord, RetryState

# A record waiting for the schema registry is read again after this long.
REGISTRY_RETRY_SECONDS = 1.0


class RecordHandler:
    def __init__(
        self,
        state: RunState,
        decoder: Decoder,
        writer: Writer,
        rows: FrontEndRows,
        outcomes: OutcomeLog,
        errors: ClientErrors,
    ) -> None:
        self.state = state
        self.decoder = decoder
        config = state.config
        self._source = Routing(decoder, config.rules, config.backoff)
        # A decoder of its own: `seen` counts source records only.
        self._retries = Routing(decoder.sharing_schemas(), config.rules, config.backoff)
        self.writer = writer
        self.rows = rows
        self.outcomes = outcomes
        self.errors = errors
        self._registry_down_since: float | None = None
        self._foreign_topics: set[str] = set()  # where another group's retries were seen

    def handle(self, messages: list[Message]) -> None:
        state = self.state
        now = time.time()
        self.writer.stamp()
        route = self._source.route
        source = state.settings.topic
        trackers = state.trackers[source]
        rows = self.rows
        log_outcomes = self.outcomes.enabled
        first_try_prices: list[float] = []
        retried: list[Message] = []
        consumed = 0
        # Source partitions waiting at a record (for the schema registry): what follows
        # it in the batch is read again after it.
        blocked = {p for t, p in state.waiting if t == source} if state.waiting else set()
        show_from = rows.rows_from(len(messages))
        for index, msg in enumerate(messages):
            if msg.error() is not None:
                self.errors.on_message_error(msg.error())
                continue
            if msg.topic() != source:
                retried.append(msg)
                continue
            partition, offset = msg.partition(), msg.offset()
            tracker = trackers.get(partition)
            if tracker is None:  # revoked while the batch was in hand: the next owner has it
                continue
            if blocked and partition in blocked:
                continue
            decision = route(msg.value(), 1)
            if type(decision) is WaitForRegistry:
                self._wait_for_registry(msg, decision.reason)
                blocked.add(partition)
                continue
            consumed += 1
            if type(decision) is not Processed:
                self.writer.send(self._failed(msg, tracker), decision)
                continue
            order = decision.order
            tracker.track_done(offset)
            first_try_prices.append(order.price)
            if log_outcomes:
                self.outcomes.finish(partition, offset, order, msg.key(), OrderState.PROCESSED, 1)
            if index >= show_from:
                rows.processed(partition, offset, order)
        state.stats.consumed += consumed
        state.stats.add_processed_batch(first_try_prices, now)
        if retried:
            self._handle_retries(retried)
        state.last_activity = time.monotonic()
        if self._registry_down_since is not None and (
            self.decoder.source.last_answer > self._registry_down_since
        ):
            self._registry_answered()

    def _failed(self, msg: Message, tracker: PartitionOffsets) -> Failed:
        return Failed(
            tracker,
            msg.offset(),
            msg.value(),
            msg.key(),
            msg.headers() or [],
            self.state.settings.topic,
            msg.partition(),
            msg.offset(),
            msg.timestamp()[1],
            time.time_ns() // 1_000_000,
        )

    def _handle_retries(self, messages: list[Message]) -> None:
        """Records of the retry topics: an attempt for each that is due; a partition whose
        head is not due yet is paused until it is, from that record on."""
        state = self.state
        now_ms = time.time_ns() // 1_000_000
        consumer = state.consumer
        for msg in messages:
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            key = (topic, partition)
            tracker = state.trackers.get(topic, {}).get(partition)
            if tracker is None or key in state.waiting:
                continue  # revoked, or behind a head that is not due (it is read again)
            try:
                retry = RetryState.parse(msg.headers())
            except NotARetryRecord as exc:
                failed = self._failed(msg, tracker)._replace(topic=topic)
                self.writer.dead_letter(
                    failed, DeadLetter(ErrorType.DESERIALIZATION, str(exc), 1, None)
                )
                continue
            if retry.group is not None and retry.group != state.config.group:
                self._skip_foreign_retry(topic, retry.group, tracker, offset)
                continue
            if retry.due_ms > now_ms:
                tp = TopicPartition(topic, partition, offset)
                consumer.pause([tp])
                consumer.seek(tp)
                state.waiting[key] = (retry.due_ms / 1000, offset)
                continue
            attempt = retry.attempts + 1
            decision = self._retries.route(msg.value(), attempt)
            if type(decision) is WaitForRegistry:  # not an attempt: it waits for the registry
                self._wait_for_registry(msg, decision.reason)
                continue
            state.stats.retry_attempts += 1
            failed = Failed(
                tracker,
                offset,
                msg.value(),
                msg.key(),
                retry.source_headers,
                retry.original_topic,
                retry.original_partition,
                retry.original_offset,
                retry.original_timestamp,
                retry.first_failure_ms,
            )
            if type(decision) is not Processed:
                self.writer.send(failed, decision)
                continue
            order = decision.order
            tracker.track_done(offset)
            state.stats.add_processed(order.price, recovered=True, now=time.time())
            self.outcomes.finish(
                failed.partition,
                failed.source_offset,
                order,
                msg.key(),
                OrderState.PROCESSED,
                attempt,
            )
            self.rows.recovered(failed, order, attempt)

    def _skip_foreign_retry(
        self, topic: str, group: str, tracker: PartitionOffsets, offset: int
    ) -> None:
        """Another group's retry is its job, not ours: done here without a look, counted,
        and said once per topic (a misconfiguration: two groups given one prefix)."""
        tracker.track_done(offset)
        self.state.stats.foreign_retries_skipped += 1
        if topic not in self._foreign_topics:
            self._foreign_topics.add(topic)
            self.state.reports.report(
                f"foreign {topic}",
                f"skipping retry records of group "
                f"{group!r} on {topic}: a retry topic belongs to one "
                "group; give each group its own --retry-topic-prefix",
                error=True,
            )

    def _wait_for_registry(self, msg: Message, reason: str) -> None:
        """The record's writer schema cannot be fetched now: it is not undecodable, so it
        waits, and its partition with it, from this record on (read again when due)."""
        state = self.state
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        tp = TopicPartition(topic, partition, offset)
        state.consumer.pause([tp])
        state.consumer.seek(tp)
        state.waiting[(topic, partition)] = (time.time() + REGISTRY_RETRY_SECONDS, offset)
        if self._registry_down_since is None:
            self._registry_down_since = time.monotonic()
            state.stats.registry_outages += 1
            self._registry_status(False)
        state.reports.report(
            "registry",
            f"{self.decoder.source.name} does not answer "
            f"({reason}): records that need a schema from it wait, and are "
            f"read again every {REGISTRY_RETRY_SECONDS:g} s",
            error=True,
        )

    def _registry_answered(self) -> None:
        down_for = time.monotonic() - self._registry_down_since
        self._registry_down_since = None
        reports = self.state.reports
        reports.again("registry")
        reports.report(
            "registry", f"{self.decoder.source.name} answers again after {down_for:.1f} s"
        )
        self._registry_status(True)

    def _registry_status(self, reachable: bool) -> None:
        if self.state.reports.events is not None:
            self.state.reports.events.put(RegistryStatus(reachable))
