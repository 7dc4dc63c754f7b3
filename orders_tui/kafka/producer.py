"""Producing batches of random orders, and counting their delivery reports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer

from orders_tui.domain.codec import DEFAULT_SCHEMA_ID, WireFormat, encode
from orders_tui.domain.order import Order, OrderFactory
from orders_tui.kafka.access import is_authorization_failure, not_authorized_text
from orders_tui.kafka.config import KafkaSettings, make_client

PRODUCER_DEFAULTS: dict[str, object] = {
    "enable.idempotence": True,  # acks=all, ordered and de-duplicated retries
    "linger.ms": 5,
    "message.timeout.ms": 30_000,
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


def make_producer(settings: KafkaSettings, **overrides: object) -> Producer:
    return make_client(Producer, settings.client_config(**{**PRODUCER_DEFAULTS, **overrides}))


class OrderProducer:
    """Sends orders to `settings.topic`: key = orderId, value = Avro in `wire_format`.

    One instance is used from one thread; `produce` blocks until every delivery report
    is in (or `stop` is set and the queue is flushed).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        wire_format: WireFormat = WireFormat.SCHEMALESS,
        seed: int | None = None,
        on_order: Callable[[Order], None] | None = None,
        schema_id: int = DEFAULT_SCHEMA_ID,
    ) -> None:
        self._settings = settings
        self._wire_format = wire_format
        self._schema_id = schema_id
        self._factory = OrderFactory(seed)
        self._producer = make_producer(settings)
        self._on_order = on_order

    def produce(
        self,
        count: int,
        rate: float | None = None,
        progress: Callable[[int, int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> ProduceResult:
        """Produce `count` orders, at most `rate` a second if given.

        progress(delivered, failed) is called about every 0.1 s and at the end.
        """
        result = ProduceResult()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                result.delivered += 1
            else:
                result.failed += 1
                if not result.first_error:
                    result.first_error = (
                        not_authorized_text(self._settings, err, "Write", topic)
                        if is_authorization_failure(err)
                        else err.str()
                    )

        producer = self._producer
        topic = self._settings.topic
        factory, wire_format, on_order = self._factory, self._wire_format, self._on_order
        schema_id = self._schema_id
        start = time.perf_counter()
        next_progress = start + PROGRESS_EVERY
        for i in range(count):
            if stop is not None and stop.is_set():
                break
            if rate:
                wait = start + i / rate - time.perf_counter()
                if wait > 0:
                    producer.poll(wait)
            order = factory()
            value = encode(order, wire_format, schema_id)
            while True:
                try:
                    producer.produce(topic, value, order.orderId, on_delivery=on_delivery)
                    break
                except BufferError:  # local queue full: serve delivery reports, then retry
                    producer.poll(0.05)
            if on_order is not None:
                on_order(order)
            if progress is not None and (rate or (i & 255) == 0):
                now = time.perf_counter()
                if now >= next_progress:
                    producer.poll(0)
                    progress(result.delivered, result.failed)
                    next_progress = now + PROGRESS_EVERY
        while producer.flush(PROGRESS_EVERY) > 0:
            if progress is not None:
                progress(result.delivered, result.failed)
        result.seconds = time.perf_counter() - start
        if progress is not None:
            progress(result.delivered, result.failed)
        return result
