"""The pipeline: poll -> route -> write -> checkpoint, on one thread.

Nothing waits in memory. A transient failure is copied to a retry topic (see
`retry_topics`) and its source offset is then done like any other; the pipeline consumes
the retry topics in the same group and pauses a retry partition until its head record is
due. So a commit never waits on a retry, and a stop, a crash or a rebalance redoes only
what was in flight since the last checkpoint (every COMMIT_EVERY seconds).

The loop is the core; each role is a module of this package: the routing decision is
the domain's (`domain/routing`), `handling` carries it out for a batch, `writer` sends
retry and DLQ records, a checkpoint strategy per guarantee (`exactly_once`,
`at_least_once`) makes them durable and commits offsets, `rebalance`, `recovery`,
`connection` and `client_errors` handle what the group and the clients do, `drain` says
when the work is done, `fleet_status` speaks to the fleet.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable

from orders_tui.domain.member_status import RUNNING, STOPPED
from orders_tui.domain.stats import PipelineStats
from orders_tui.kafka.clients import KafkaClients
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.decoders import make_decoder
from orders_tui.kafka.delivery import COMMIT_EVERY
from orders_tui.kafka.engine_config import EngineConfig
from orders_tui.kafka.events import EventQueue
from orders_tui.kafka.group_view import GroupView
from orders_tui.kafka.member_watch import MemberWatch
from orders_tui.kafka.membership import MemberSlot
from orders_tui.kafka.pipeline.at_least_once import AtLeastOnceCheckpoint
from orders_tui.kafka.pipeline.client_errors import ClientErrors
from orders_tui.kafka.pipeline.connection import Connection
from orders_tui.kafka.pipeline.drain import Drain, DrainResult
from orders_tui.kafka.pipeline.exactly_once import ExactlyOnceCheckpoint
from orders_tui.kafka.pipeline.fleet_status import FleetStatus
from orders_tui.kafka.pipeline.handling import RecordHandler
from orders_tui.kafka.pipeline.outcome_log import OutcomeLog
from orders_tui.kafka.pipeline.rebalance import Rebalance
from orders_tui.kafka.pipeline.records import Finished
from orders_tui.kafka.pipeline.recovery import INSTANCE_HELD_RETRY, Recovery
from orders_tui.kafka.pipeline.reports import Reports
from orders_tui.kafka.pipeline.rows import FrontEndRows
from orders_tui.kafka.pipeline.run_clients import RunClients
from orders_tui.kafka.pipeline.run_state import RunState
from orders_tui.kafka.pipeline.tuning import (
    CAREFUL_BATCH,
    CONSUME_BATCH,
    POLL_TIMEOUT,
    SHUTDOWN_SECONDS,
)
from orders_tui.kafka.pipeline.writer import Writer
from orders_tui.kafka.status import STATUS_EVERY


class Pipeline:
    """Owns one consumer set and one producer; `run` is called on the thread that owns
    them. Other threads may call `pause`, `resume` and `stop` and read `stats`."""

    def __init__(
        self,
        settings: KafkaSettings,
        config: EngineConfig | None = None,
        events: EventQueue | None = None,
        on_finished: Callable[[list[Finished]], None] | None = None,
        on_report: Callable[[str], None] | None = None,
        clients: KafkaClients | None = None,
    ) -> None:
        self.settings = settings
        self.clients = clients or KafkaClients()
        self.config = config or EngineConfig()
        self.decoder = make_decoder(settings, self.config.schema_id)
        self.shutdown_seconds = SHUTDOWN_SECONDS
        self.state = state = RunState(settings, self.config, Reports(events, on_report))
        self.stats: PipelineStats = state.stats
        self.rows = FrontEndRows(events)
        self.outcomes = OutcomeLog(on_finished)
        strategy = ExactlyOnceCheckpoint if self.config.exactly_once else AtLeastOnceCheckpoint
        self.checkpoint = strategy(state, self.outcomes, self.rows)
        self.errors = ClientErrors(state)
        self.connection = Connection(state, self.errors)
        self.rebalance = Rebalance(state, self.checkpoint)
        group_view = GroupView(settings, self.config.group)
        member_watch = MemberWatch(group_view.describe)
        self.run_clients = RunClients(
            state,
            self.clients,
            self.checkpoint,
            self.rebalance,
            self.connection,
            self.errors,
            member_watch,
        )
        self.recovery = Recovery(
            state, self.run_clients, self.checkpoint, self.errors, member_watch
        )
        self.checkpoint.rewind = self.recovery.rewind
        self.checkpoint.replace_producer = self.recovery.replace_producer
        self._drain = Drain(state, self.checkpoint, group_view)
        self.drain: DrainResult | None = None  # how --idle-exit ended the run

    # ---- requests from other threads: they only set state ----

    def stop(self) -> None:
        self.state.stopping.set()
        self.state.interrupt.set()

    def pause(self) -> None:
        self.state.want_paused = True

    def resume(self) -> None:
        self.state.want_paused = False

    @property
    def pause_requested(self) -> bool:
        return self.state.want_paused

    @property
    def paused(self) -> bool:
        """Pause in effect."""
        return self.state.paused

    # ---- the run ----

    def run(self, idle_exit: float | None = None) -> PipelineStats:
        """Consume until `stop()`, or with `idle_exit` until nothing arrived for that long
        and the group has committed everything (`drain` says how it ended). Commits what
        is done before returning."""
        state, config, run_clients = self.state, self.config, self.run_clients
        writer = Writer(state, self.checkpoint, self.rows)
        self._handler = RecordHandler(
            state, self.decoder, writer, self.rows, self.outcomes, self.errors
        )
        self._fleet = FleetStatus(
            state, self.decoder, lambda paused: self.pause() if paused else self.resume()
        )
        for line in self.clients.create_retry_topics(self.settings, state.retry_topics):
            state.reports.report(line, line, error=True)
        state.slot = MemberSlot.take(config.group, config.instance_id or None)
        try:
            state.delivery = run_clients.make_delivery()
            state.consumer = run_clients.make_consumer()
        except BaseException:
            state.slot.release()
            raise
        # Incremental (un)assignment with cooperative-sticky or KIP-848's protocol, unless
        # -X chose an eager strategy.
        properties = self.settings.properties
        state.cooperative = properties.get("group.protocol") == "consumer" or "cooperative" in str(
            properties.get("partition.assignment.strategy", "cooperative-sticky")
        )
        self.stats.started = time.time()
        state.last_activity = time.monotonic()
        try:
            if self.clients.fleet:
                self._fleet.member.join(state.stopping)
            run_clients.begin()
            if not state.stopping.is_set():
                shared = self.clients.shared_retry_topics(self.settings, config)
                state.draining = self._drain.shared_retries_waiting(shared)
                run_clients.subscribe()
                # Everything allocated so far (modules, clients, caches) lives as long as
                # the process: moved out of the garbage collector's way, its full passes
                # stop walking it again and again under load (+15-30 % orders/s).
                gc.freeze()
                self._loop(idle_exit)
        finally:
            self._shutdown()
        self.drain = self._drain.result
        if state.fatal is not None:
            raise state.fatal
        return self.stats

    def _loop(self, idle_exit: float | None) -> None:
        state, checkpoint, recovery = self.state, self.checkpoint, self.recovery
        while not state.stopping.is_set():
            if state.delivery.blocked:  # a commit must complete before anything is written
                self._complete_commit()
                continue
            self.rebalance.apply_pause()
            careful = time.monotonic() < state.careful_until
            messages = state.consumer.consume(
                CAREFUL_BATCH if careful else CONSUME_BATCH, self._poll_timeout()
            )
            if state.fenced and (
                state.held_since is None
                or time.monotonic() - state.joined_at >= INSTANCE_HELD_RETRY
            ):
                recovery.replace_consumer()
                continue
            if messages:
                self._handler.handle(messages)
            self.rebalance.wake_due_retries()
            self.run_clients.poll_producer(0)
            if state.producer_broken:
                recovery.replace_broken_producer()
                continue
            if (careful and messages) or time.monotonic() - checkpoint.last >= COMMIT_EVERY:
                # Not waited on, unless trouble was recent: the next batch is read and
                # routed while the transaction commits (the loop spent 62 % of its time
                # waiting on commits: docs/performance.md).
                checkpoint.checkpoint(POLL_TIMEOUT, wait=careful)
            self._look_around()
            if idle_exit is not None and self._drain.idle_for() >= idle_exit:
                if self._drain.drained_enough():
                    break
            else:
                self._drain.not_idle()

    def _poll_timeout(self) -> float:
        """Short enough to notice a stop, and a waiting retry when it is due."""
        waiting = self.state.waiting
        if not waiting or self.state.paused:
            return POLL_TIMEOUT
        next_due = min(due for due, _ in waiting.values())
        return max(0.0, min(POLL_TIMEOUT, next_due - time.time()))

    def _complete_commit(self) -> None:
        state = self.state
        if not self.checkpoint.checkpoint(POLL_TIMEOUT * 5):
            # Waits instead of spinning when the checkpoint cannot even try (the broker
            # is away), and serves the producer's callbacks meanwhile: its statistics
            # tell when the broker is back.
            self.run_clients.poll_producer(POLL_TIMEOUT)
        if state.producer_broken:
            self.recovery.replace_broken_producer()
        if state.fenced:  # its replacement aborts what the commit waits for
            self.recovery.replace_consumer()

    def _look_around(self) -> None:
        """Once a loop, what is not about records: the fleet's status record, the old
        shared retry topics, a member idle with work waiting or out of the group."""
        if time.monotonic() - self._fleet.last_published >= STATUS_EVERY:
            self._fleet.publish(RUNNING)
        if self.state.draining and self._drain.shared_retries_drained():
            self.run_clients.subscribe()
        self._drain.say_if_idle_with_work()
        self.recovery.rejoin_missing_members()

    # ---- stopping within shutdown_seconds, broker or not ----

    def _shutdown(self) -> None:
        state = self.state
        consumer = state.consumer
        deadline = time.monotonic() + self.shutdown_seconds
        state.interrupt.clear()
        try:
            if consumer is not None and state.fatal is None and any(state.trackers.values()):
                consumer.pause(consumer.assignment())  # nothing new while finishing
                self.checkpoint.final(deadline)
            elif state.fatal is not None:
                self.checkpoint.abandon()
        finally:
            self.stats.schemas_seen = self.decoder.seen_labels()
            if self._fleet.member.joined:
                self._fleet.publish(STOPPED)
            self._fleet.member.leave(max(0.0, min(0.5, deadline - time.monotonic())))
            if consumer is not None:
                # What could be committed was: the rebalance callbacks close() runs (on
                # the closer's thread) only give partitions up. Run in full, a level's
                # revoke committed every level, those already closed too (a traceback).
                self.run_clients.retire()
                # close() waits for the broker (45 s when it is gone): give it what is left.
                closer = threading.Thread(target=consumer.close, daemon=True)
                closer.start()
                closer.join(max(0.2, deadline - time.monotonic()))
            if state.slot is not None:
                state.slot.release()
