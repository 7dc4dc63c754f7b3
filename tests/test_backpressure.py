"""One way to hand a record to a full client (orders_tui/kafka/producer.py), used by the
order producer, the pipeline's writer and the redrive: wait, serving callbacks, and
hand it again; the record is handed exactly once it fits."""

from __future__ import annotations

from orders_tui.kafka.producer import produce_when_room


class FullFor:
    """A producer whose queue is full for the first `times` calls."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.handed: list[tuple] = []
        self.polls: list[float] = []

    def produce(self, topic, value, key, **options) -> None:
        if self.times:
            self.times -= 1
            raise BufferError("Local: Queue full")
        self.handed.append((topic, value, key, options))

    def poll(self, timeout: float) -> int:
        self.polls.append(timeout)
        return 0


def test_a_full_queue_is_waited_out_serving_callbacks_and_the_record_goes_once():
    producer = FullFor(times=3)
    produce_when_room(producer, "orders-dlq", b"v", b"k", headers=[("h", b"1")])
    assert producer.handed == [("orders-dlq", b"v", b"k", {"headers": [("h", b"1")]})]
    assert producer.polls == [0.05, 0.05, 0.05]


def test_the_caller_may_serve_callbacks_its_own_way():
    producer, served = FullFor(times=1), []
    produce_when_room(producer, "t", None, None, served.append)
    assert served == [0.05] and producer.polls == [] and len(producer.handed) == 1
