"""Whether Kafka can be reached: a loss is said once when it starts and once when it
ends, from the clients' error callbacks and statistics."""

from __future__ import annotations

import json
import time

from confluent_kafka import KafkaError

from orders_tui.kafka.pipeline.client_errors import ClientErrors
from orders_tui.kafka.pipeline.run_state import RunState


class Connection:
    def __init__(self, state: RunState, errors: ClientErrors) -> None:
        self.state = state
        self.errors = errors
        self._reported_down = False

    def on_error(self, error: KafkaError) -> None:
        state = self.state
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            if state.down_since is None:
                state.down_since = time.monotonic()
                state.be_careful()
                state.stats.connection_losses += 1
                self._reported_down = state.reports.report(
                    "connection",
                    f"lost the connection to Kafka at {state.settings.bootstrap_servers} "
                    f"({error.str()}); retrying",
                    error=True,
                )
            state.reports.status(False, error.str())
        elif error.code() == KafkaError._TRANSPORT:
            state.reports.status(False, error.str())
        elif error.fatal():
            self.errors.on_fatal(error)

    def on_producer_error(self, error: KafkaError) -> None:
        """The producer's view of the connection (its own failures surface where it is
        called): heard while the consumer is not polled, a commit hanging, say."""
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self.on_error(error)

    def on_stats(self, stats_json: str) -> None:
        state = self.state
        if state.down_since is None:
            return
        stats = json.loads(stats_json)
        now = time.monotonic()
        # When the statistics were taken: librdkafka's clock is CLOCK_MONOTONIC, as
        # Python's; a callback served late must not date an old answer after the loss.
        taken = stats.get("ts", now * 1e6) / 1e6
        if not now - 60 < taken <= now:
            taken = now
        since_loss = taken - state.down_since
        # The broker is back when a real connection (a bootstrap broker, node -1, may be
        # the first; learned ones can stay away until the next metadata refresh) came up
        # after the loss (`stateage`: microseconds in that state), or heard from its
        # broker since (`rxidle`: microseconds since it last received): one merely still
        # UP may be a socket to a dead broker that nobody has written to yet ("restored
        # after 3.4 s" while the only broker was killed).
        if any(
            b.get("source") != "logical"
            and b.get("state") == "UP"
            and (
                b.get("stateage", 0) / 1e6 < since_loss
                or 0 <= b.get("rxidle", -1) / 1e6 < since_loss
            )
            for b in stats.get("brokers", {}).values()
        ):
            down_for = now - state.down_since
            state.down_since = None
            state.be_careful()
            state.stats.seconds_disconnected += down_for
            if self._reported_down:  # "back" follows every "lost" that was said
                self._reported_down = False
                state.reports.again("connection")
                state.reports.report(
                    "connection", f"connection to Kafka restored after {down_for:.1f} s"
                )
            state.reports.status(True)
