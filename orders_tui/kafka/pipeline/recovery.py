"""Recovery: a new consumer when ours was fenced or fell out of the group, a new
transactional producer when it failed, and the rewind to the group's commits that
follows an aborted transaction. Each keeps within a failure budget, then ends the run
saying why."""

from __future__ import annotations

import threading
import time

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from orders_tui.domain.failure_budget import FailureBudget
from orders_tui.domain.offsets import PartitionOffsets
from orders_tui.errors import KafkaRefused
from orders_tui.kafka.member_watch import MISSING_AFTER, MemberWatch
from orders_tui.kafka.pipeline.checkpoint import Checkpoint
from orders_tui.kafka.pipeline.client_errors import ClientErrors
from orders_tui.kafka.pipeline.reports import per_partition
from orders_tui.kafka.pipeline.run_clients import RunClients
from orders_tui.kafka.pipeline.run_state import RunState
from orders_tui.kafka.pipeline.tuning import POLL_TIMEOUT

CLOSE_WAIT = 10.0  # seconds a replaced consumer is given to close before its successor joins
RELEASE_WAIT = 3.0  # seconds a replaced consumer is given to give its partitions up
# KIP-848: joining again while a killed predecessor's session holds our instance id.
INSTANCE_HELD_RETRY = 5.0
INSTANCE_HELD_FOR = 120.0  # longer than any session the broker allows by default (60 s)


class Recovery:
    def __init__(
        self,
        state: RunState,
        run_clients: RunClients,
        checkpoint: Checkpoint,
        errors: ClientErrors,
        member_watch: MemberWatch,
    ) -> None:
        self.state = state
        self.run_clients = run_clients
        self.checkpoint = checkpoint
        self.errors = errors
        self.member_watch = member_watch
        self._producer_failures = FailureBudget(allowed=10)
        self._consumer_fencings = FailureBudget(allowed=10)

    def replace_consumer(self) -> None:
        """Our static member was fenced by a member with the same instance id. This
        pipeline holds the id's lock, so that member was our own earlier incarnation:
        seen after a broker restart, when a rejoin raced a commit. A new consumer with
        the same id takes the partitions back; what was not committed is done again."""
        state = self.state
        why, state.fenced = state.fenced, ""
        if state.held_since is not None:
            self._rejoin_held_instance(why)
            return
        if not self._consumer_fencings.spend(time.monotonic()):
            state.refuse(
                KafkaRefused(
                    f"another consumer keeps using group.instance.id "
                    f"{state.instance_id!r} ({why}): give each pipeline its "
                    "own --instance-id"
                )
            )
            return
        state.reports.report(
            "recovery", f"the consumer was fenced ({why}); joining again", error=True
        )
        self._new_consumer()

    def _rejoin_held_instance(self, why: str) -> None:
        """Joins again every INSTANCE_HELD_RETRY seconds while our killed predecessor's
        session holds the instance id, for as long as a session can last."""
        state = self.state
        if time.monotonic() - state.held_since > INSTANCE_HELD_FOR:
            state.refuse(
                KafkaRefused(
                    f"group.instance.id {state.instance_id!r} stays taken ({why}): another "
                    "running pipeline uses it? give each its own --instance-id"
                )
            )
            return
        if not state.held_said:
            state.held_said = True
            state.reports.report(
                "held",
                f"group.instance.id {state.instance_id!r} is still "
                "held by a member that stopped without leaving (killed?) "
                "until its session ends (45 s by default with "
                "group.protocol=consumer); joining again every "
                f"{INSTANCE_HELD_RETRY:.0f} s",
                error=True,
            )
        self._new_consumer()

    def rejoin_missing_members(self) -> bool:
        """A consumer of ours out of the group for long while Kafka answers is said, and
        the consumers are replaced (see member_watch). True when they were."""
        state = self.state
        if state.down_since is not None or state.held_since is not None or state.fenced:
            self.member_watch.pause()
            return False
        missing = ", ".join(self.member_watch.missing(time.monotonic()))
        if not missing:
            return False
        group = state.config.group
        if not self._consumer_fencings.spend(time.monotonic()):
            why = f"{missing} keep failing to join group {group!r}: see the broker's log"
            state.refuse(KafkaRefused(why))
            return False
        text = (
            f"{missing} not in group {group!r} for {MISSING_AFTER:.0f} s while Kafka answers: "
            "joining again with new consumers; what was not committed is consumed again"
        )
        state.reports.report("rejoin", text, error=True)
        self._new_consumer()
        return True

    def _new_consumer(self) -> None:
        state = self.state
        state.be_careful()
        old = state.consumer
        self.run_clients.retire()
        if old.release(RELEASE_WAIT):
            # Closing one that still holds partitions could freeze the process (see
            # ConsumerSet.release): it is left behind, to be fenced by its successor.
            text = f"a replaced consumer kept its partitions for {RELEASE_WAIT:.0f} s: left behind"
            state.reports.report("release", text, error=True)
        # Closed on a thread of its own (it may wait for the broker), but waited for a
        # while: one still rejoining with our instance ids fences the new one at once
        # (a cluster test's pipeline was fenced after every failover until it gave up).
        closing = threading.Thread(target=old.close, daemon=True)
        closing.start()
        closing.join(CLOSE_WAIT)
        if closing.is_alive():
            state.reports.report(
                "close-wait",
                f"the replaced consumer has not closed after "
                f"{CLOSE_WAIT:.0f} s; its successor joins anyway",
                error=True,
            )
        self.checkpoint.consumer_replaced()
        state.forget_all()
        self.checkpoint.forget_writes()
        state.joined = False
        state.paused = False  # the new consumer starts unpaused; apply_pause re-applies
        state.consumer = self.run_clients.make_consumer()
        self.run_clients.subscribe()

    def replace_broken_producer(self) -> None:
        state = self.state
        why, state.producer_broken = state.producer_broken, ""
        if state.stopping.is_set():
            return  # stopping: what is not committed comes again
        self.checkpoint.producer_failed(why)

    def replace_producer(self, why: str) -> None:
        """A new transactional producer (same id: it fences the old one), then redo the
        work since the last commit. Stops when it keeps failing."""
        state = self.state
        if not self._producer_failures.spend(time.monotonic()):
            state.refuse(
                KafkaRefused(
                    f"the transactional producer keeps failing ({why}); if it was fenced, "
                    f"another pipeline uses instance id {state.instance_id!r}: give each "
                    "its own --instance-id"
                )
            )
            return
        state.reports.report(
            "recovery", f"the transactional producer failed ({why}); starting a new one", error=True
        )
        state.delivery = self.run_clients.make_delivery()
        self.run_clients.begin()
        if not state.stopping.is_set():
            self.rewind("after a new producer")

    def rewind(self, why: str) -> None:
        """After an aborted transaction or a new producer: back to the group's committed
        offsets, as if the work since then had not happened (it is done again; processed
        orders count twice). They are asked of the broker, not remembered: a commit whose
        answer was lost (the broker restarted) may have happened, and the new producer's
        start completed it."""
        state = self.state
        state.be_careful()
        consumer = state.consumer
        held = state.held()
        positions = {(tp.topic, tp.partition): tp.offset for tp in consumer.position(held)}
        committed: list[TopicPartition] | None = None
        while held and committed is None:
            if state.stopping.is_set():
                return  # the next run resumes from the group's commit
            try:
                committed = consumer.committed(held, timeout=POLL_TIMEOUT * 10)
            except KafkaException as exc:
                error = exc.args[0]
                if error.fatal() or error.code() == KafkaError._FATAL:
                    # The consumer failed for good (fenced, say) and would answer this
                    # forever, silently holding the loop (seen at the end of the cluster
                    # test). Nothing of these partitions is committed from now on; the
                    # consumer's replacement, or the next run, starts from the group's
                    # commits.
                    state.trackers = {t: {} for t in state.topics}
                    self.errors.on_fatal(error)
                    return
                state.reports.report(
                    "rewind-wait",
                    "waiting for the group coordinator to say "
                    f"where to consume again from ({error.str()})",
                    error=True,
                )
        back = {
            (tp.topic, tp.partition): positions.get((tp.topic, tp.partition), -1) - tp.offset
            for tp in committed or []
            if tp.offset >= 0
        }
        state.reports.report(
            "rewind",
            f"{why}: consuming again from the last commit "
            f"({per_partition(back, ' back') or 'nothing to redo'})",
            error=True,
        )
        for tp in committed or []:
            key = (tp.topic, tp.partition)
            state.trackers[tp.topic][tp.partition] = PartitionOffsets()
            state.stored.pop(key, None)
            if tp.offset >= 0:
                state.committed[key] = tp.offset
            if state.waiting.pop(key, None) is not None and not state.paused:
                consumer.resume([tp])
            start = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            consumer.seek(TopicPartition(tp.topic, tp.partition, start))
        self.checkpoint.forget_writes()
