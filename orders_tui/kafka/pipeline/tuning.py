"""The pipeline's settings that are not the user's: batch sizes, timeouts and the
consumer's defaults, with why each has its value."""

from __future__ import annotations

CONSUME_BATCH = 1000
# For a while after trouble (an outage, lost partitions, an abort, a failed commit) the
# cluster is still settling and another abort is likely, while the backlog is consumed
# at full speed: transactions of 0.1 s then held ~3,000 orders, all done again when one
# was aborted (5,000 of 30,000 after a leader was killed). Meanwhile each small batch is
# its own checkpoint.
CAREFUL_SECONDS = 30.0
CAREFUL_BATCH = 200
SESSION_TIMEOUT_MS = 10_000
# Settings of the classic group protocol, which KIP-848's consumer protocol refuses.
CLASSIC_PROTOCOL_ONLY = {
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
}
CONSUMER_DEFAULTS: dict[str, object] = {
    "auto.offset.reset": "earliest",
    # How long librdkafka waits to fetch again when its local queue is full. Its default,
    # 1 s, starves a fast consumer (about 110k orders/s here); 0 makes the fetcher spin
    # on a core whenever the consumer is behind (1 CPU second per 200k orders, taken from
    # the broker and the pipeline on a 2-core machine).
    "fetch.queue.backoff.ms": 5,
    # Incremental rebalances: a partition that stays put keeps being consumed.
    "partition.assignment.strategy": "cooperative-sticky",
    # With static membership a stopped member's partitions wait this long for it to come
    # back before they move (the broker's minimum is 6 s; librdkafka's default 45 s).
    "session.timeout.ms": SESSION_TIMEOUT_MS,
    "statistics.interval.ms": 1000,  # tells when the broker is back after an outage
    # librdkafka notices a deleted topic only at a metadata refresh (every 5 min by
    # default): it then says the topic is gone and the pipeline stops saying so.
    "topic.metadata.refresh.interval.ms": 10_000,
}
POLL_TIMEOUT = 0.1  # seconds: how quickly a stop request or a due retry is noticed
# A transactional call that has not returned after this long is given up on (see delivery).
STUCK_AFTER = 5.0
SHUTDOWN_SECONDS = 4.0  # a stop finishes within this, broker or not (`q`: see Engine)
REPORT_EVERY = 5.0  # seconds between two reports of the same kind (outage, commit failure)
