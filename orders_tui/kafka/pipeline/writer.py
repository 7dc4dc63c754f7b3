"""Sends a failed record on: to the retry topic of its next attempt, or to the DLQ, with
headers that say why. Each write is kept as a letter until its checkpoint."""

from __future__ import annotations

import time

from orders_tui.domain.order import Order
from orders_tui.domain.routing import DeadLetter, ErrorType, Retry
from orders_tui.errors import KafkaRefused
from orders_tui.kafka.delivery import ProducerFailed
from orders_tui.kafka.dlq import FailureHeaders, Headers
from orders_tui.kafka.pipeline.checkpoint import Checkpoint
from orders_tui.kafka.pipeline.records import Failed, Letter, new_letter
from orders_tui.kafka.pipeline.rows import FrontEndRows
from orders_tui.kafka.pipeline.run_state import RunState
from orders_tui.kafka.retry_topics import RetryState


class Writer:
    def __init__(self, state: RunState, checkpoint: Checkpoint, rows: FrontEndRows) -> None:
        self.state = state
        self.checkpoint = checkpoint
        self.rows = rows
        self._failure_headers = FailureHeaders(state.config.group, state.settings.topic)

    def stamp(self) -> None:
        """A new batch: the DLQ records' `timestamp` is taken once per batch."""
        self._failure_headers.stamp()

    def send(self, failed: Failed, route: Retry | DeadLetter) -> None:
        if type(route) is Retry:
            self.retry(failed, route)
            return
        if route.order is not None:  # a failed attempt: a followed order's retries end
            self.rows.exhausted(failed, route.order, route.attempt)
        self.dead_letter(failed, route)

    def retry(self, failed: Failed, route: Retry) -> None:
        state = self.state
        order, attempts = route.order, route.attempt
        due = time.time() + route.delay
        retry_state = RetryState(
            attempts,
            int(due * 1000),
            failed.first_failure_ms,
            route.reason,
            failed.topic,
            failed.partition,
            failed.source_offset,
            failed.timestamp,
            failed.own_headers,
            state.config.group,
        )
        self._write(
            state.retry_topics[attempts - 1], failed, retry_state.headers(), None, order, attempts
        )
        self.rows.retry_scheduled(
            failed, order, attempts, state.config.rules.max_attempts, route.reason, due
        )

    def dead_letter(self, failed: Failed, route: DeadLetter) -> None:
        # The pipeline's own topic is encoded once in FailureHeaders; any other (a record
        # not written as a retry, found on a retry topic) is named by itself.
        state = self.state
        topic = None if failed.topic == state.settings.topic else failed.topic.encode()
        headers = self._failure_headers(
            failed.own_headers,
            failed.partition,
            failed.source_offset,
            failed.timestamp,
            route.reason,
            route.error_type,
            route.attempt,
            topic,
        )
        self._write(
            state.settings.dlq_topic, failed, headers, route.error_type, route.order, route.attempt
        )

    def _write(
        self,
        topic: str,
        failed: Failed,
        headers: Headers,
        error_type: ErrorType | None,
        order: Order | None,
        attempts: int,
    ) -> None:
        state = self.state
        tracker = failed.tracker
        self.checkpoint.track_written(tracker, failed.offset)
        state.letters.append(
            new_letter(
                Letter,
                (
                    tracker,
                    failed.offset,
                    error_type,
                    attempts,
                    order,
                    failed.key,
                    failed.partition,
                    failed.source_offset,
                ),
            )
        )
        if state.fatal is not None or state.producer_broken:
            return  # stopping, or redone once the producer is replaced
        try:
            state.delivery.write(topic, failed.value, failed.key, headers)
        except KafkaRefused as exc:
            state.refuse(exc)
        except ProducerFailed as exc:
            state.producer_broken = str(exc)  # replaced by the loop, after this batch
