"""Producing batches of random orders, and counting their delivery reports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer

from orders_tui.domain.codec import DEFAULT_SCHEMA_ID, WireFormat
from orders_tui.domain.encoding import encode_many
from orders_tui.domain.order import CHUNK, Order, OrderFactory
from orders_tui.domain.pacing import PACED_LINGER, Pace
from orders_tui.kafka.access import is_authorization_failure, not_authorized_text
from orders_tui.kafka.config import KafkaSettings, make_client

PRODUCER_DEFAULTS: dict[str, object] = {
    "enable.idempotence": True,  # acks=all, ordered and de-duplicated retries
    "linger.ms": 5,
    "message.timeout.ms": 30_000,
    # Keys go to the partition Java's clients choose (murmur2): librdkafka's default
    # (CRC32) put a key replayed into a topic Java services write on another partition,
    # breaking its order. -X partitioner=... still wins.
    "partitioner": "murmur2_random",
    # Writing to a missing topic must not create it with the broker's defaults (1
    # partition, on a stock broker): orders-tui creates its topics as asked.
    "allow.auto.create.topics": False,
}
PROGRESS_EVERY = 0.1  # seconds between progress callbacks


@dataclass
class ProduceResult:
    delivered: int = 0
    failed: int = 0
    seconds: float = 0.0
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "delivered": self.delivered,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
        }


def produce_when_room(
    producer: Producer,
    topic: str,
    value: bytes | None,
    key: bytes | None,
    poll: Callable[[float], object] | None = None,
    **options: object,
) -> None:
    """Hand a record to the client, waiting while its queue is full (BufferError): each
    wait serves the client's callbacks (`poll`, the producer's own by default), which
    lets the queue drain. Hot loops try `produce` first and call this on BufferError."""
    while True:
        try:
            producer.produce(topic, value, key, **options)
            return
        except BufferError:
            (poll or producer.poll)(0.05)


def make_producer(settings: KafkaSettings, **overrides: object) -> Producer:
    return make_client(Producer, settings.client_config(**{**PRODUCER_DEFAULTS, **overrides}))


class OrderProducer:
    """Sends orders to `settings.topic`: key = orderId, value = Avro in `wire_format`.

    Delivery is counted without a Python call per order: the client reports failures
    only (`delivery.report.only.error`), and what was sent, did not fail and is no longer
    in the client's queue was delivered. A callback per order cost ~2 us of the ~5 us an
    order takes. One instance is used from one thread; `produce` returns when every
    order sent is delivered or failed. A `paced` producer (one given a rate) lets its
    client gather several ticks' orders into a request (see pacing.PACED_LINGER).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        wire_format: WireFormat = WireFormat.SCHEMALESS,
        seed: int | None = None,
        on_order: Callable[[Order], None] | None = None,
        schema_id: int = DEFAULT_SCHEMA_ID,
        paced: bool = False,
    ) -> None:
        self._settings = settings
        self._wire_format = wire_format
        self._schema_id = schema_id
        self._factory = OrderFactory(seed)
        self._on_order = on_order
        self._sent = 0
        self._failed = 0
        self._first_error = ""
        self._producer = make_producer(
            settings,
            on_delivery=self._on_failure,
            **{"delivery.report.only.error": True},
            **({"linger.ms": int(PACED_LINGER * 1000)} if paced else {}),
        )

    def _on_failure(self, error: KafkaError, _msg: Message) -> None:
        self._failed += 1
        if not self._first_error:
            self._first_error = (
                not_authorized_text(self._settings, error, "Write", self._settings.topic)
                if is_authorization_failure(error)
                else error.str()
            )

    @property
    def in_flight(self) -> int:
        """Orders sent and not yet delivered or failed."""
        return len(self._producer)

    @property
    def failed(self) -> int:
        return self._failed

    @property
    def delivered(self) -> int:
        """Orders delivered so far: sent, not failed, no longer in the client's queue."""
        return self._sent - self._failed - len(self._producer)

    @property
    def first_error(self) -> str:
        return self._first_error

    def send(self, count: int) -> list[Order]:
        """Make `count` orders and hand them to the client, without waiting for the
        broker; `poll` serves failure reports, `delivered` counts what arrived."""
        orders = self._factory.batch(count)
        values = encode_many(orders, self._wire_format, self._schema_id)
        producer, topic = self._producer, self._settings.topic
        produce = producer.produce
        for order, value in zip(orders, values, strict=True):
            try:
                produce(topic, value, order[0])
            except BufferError:  # the client's queue is full
                produce_when_room(producer, topic, value, order[0])
        self._sent += count
        if self._on_order is not None:
            for order in orders:
                self._on_order(order)
        return orders

    def poll(self, timeout: float = 0.0) -> None:
        self._producer.poll(timeout)

    def flush(self, timeout: float) -> int:
        """Wait up to `timeout` for what is in flight; returns how many still are."""
        return self._producer.flush(timeout)

    def produce(
        self,
        count: int,
        rate: float | None = None,
        progress: Callable[[int, int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> ProduceResult:
        """Produce `count` orders, `rate` a second if given, and wait until each is
        delivered or failed. With a rate the schedule is kept from the start: a late
        order goes at once, so the average holds whether or not reports arrive.

        progress(delivered, failed) is called about every 0.1 s and at the end.
        """
        producer = self._producer
        sent_before, failed_before = self._sent, self._failed
        self._first_error = ""
        start = time.perf_counter()
        next_progress = start + PROGRESS_EVERY

        def counts() -> tuple[int, int]:
            failed = self._failed - failed_before
            return self._sent - sent_before - failed - len(producer), failed

        def sent() -> int:
            return self._sent - sent_before

        # Chunks keep the per-order loop tight; with a rate, what the pace owes (a tick's
        # worth), waiting for it in poll(), which serves failure reports meanwhile.
        pace = Pace(rate, start, count) if rate else None
        while sent() < count and not (stop is not None and stop.is_set()):
            if pace is not None:
                now = time.perf_counter()
                owed = pace.owed(now)
                if not owed:
                    producer.poll(pace.wait(now))
                    continue
                self.send(min(owed, CHUNK))
                pace.sent_now(min(owed, CHUNK))
            else:
                self.send(min(count - sent(), CHUNK))
            producer.poll(0)  # failure reports
            if progress is not None and time.perf_counter() >= next_progress:
                progress(*counts())
                next_progress = time.perf_counter() + PROGRESS_EVERY
        while producer.flush(PROGRESS_EVERY) > 0:
            if progress is not None:
                progress(*counts())
        delivered, failed = counts()
        result = ProduceResult(delivered, failed, time.perf_counter() - start, self._first_error)
        if progress is not None:
            progress(delivered, failed)
        return result
