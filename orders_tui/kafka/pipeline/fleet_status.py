"""The pipeline in its fleet: a status record every second (what it holds and did), and
the fleet's pause and resume commands obeyed."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from confluent_kafka import KafkaException

from orders_tui.domain.codec import Decoder
from orders_tui.domain.member_status import RUNNING, MemberStatus
from orders_tui.kafka.fleet_member import FleetMember
from orders_tui.kafka.pipeline.run_state import RunState
from orders_tui.kafka.status import Command, new_status


class FleetStatus:
    def __init__(self, state: RunState, decoder: Decoder, pause: Callable[[bool], None]) -> None:
        self.state = state
        self.decoder = decoder
        self._pause = pause
        settings, config = state.settings, state.config
        self.member = FleetMember(
            settings,
            config.status_topic,
            config.control_topic,
            config.group,
            obey=self._obey,
            report=lambda text: state.reports.report("fleet", text, error=True),
        )
        self._control_seq = -1  # the last fleet command obeyed
        self.last_published = 0.0

    def _obey(self, command: Command) -> None:
        """A fleet command (on the control thread: it only sets requests)."""
        self._pause(command.paused)
        self._control_seq = command.seq
        # A kind of its own per command: each is said, however close the last one was.
        what = "paused" if command.paused else "resumed"
        self.state.reports.report(
            f"control {command.seq}",
            f"{what} by a fleet command from {command.by} (#{command.seq})",
        )

    def publish(self, state_name: str) -> None:
        self.last_published = time.monotonic()
        if self.decoder.seen:
            self.state.stats.schemas_seen = self.decoder.seen_labels()
        if self.member.joined:
            # The consumer may not say where it is (its broker away): the next second tries.
            with contextlib.suppress(KafkaException):
                self.member.publish(self._member_status(state_name))

    def _member_status(self, state_name: str) -> MemberStatus:
        state = self.state
        stats = state.stats
        source = state.settings.topic
        lag = pending = 0
        held = state.held()
        if held and state.consumer is not None and state_name == RUNNING:
            for tp in state.consumer.position(held):
                _, high = state.consumer.get_watermark_offsets(tp, cached=True)
                if tp.offset < 0 or high < 0:
                    continue  # nothing fetched yet
                behind = max(0, high - tp.offset)
                if tp.topic == source:
                    lag += behind
                else:
                    pending += behind
        return new_status(
            state.config.group,
            state.instance_id,
            state=state_name,
            paused=state.paused,
            control_seq=self._control_seq,
            partitions=sorted(state.trackers.get(source, {})),
            retry_partitions=sum(len(state.trackers.get(t, {})) for t in state.retry_topics),
            lag=lag,
            retries_pending=pending,
            orders_per_second=stats.rate.rate(time.time()),
            consumed=stats.consumed,
            processed=stats.processed,
            retry_attempts=stats.retry_attempts,
            recovered=stats.recovered,
            dead_lettered=dict(stats.dead_lettered_by_type),
            total_price=stats.total_price,
            min_price=stats.min_price if stats.processed else None,
            max_price=stats.max_price if stats.processed else None,
        )
