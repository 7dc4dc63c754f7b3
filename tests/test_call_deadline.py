"""The one wait for a transactional call with a deadline (librdkafka's calls can ignore
their own timeout after a broker restart): the pipeline's checkpoint and a redrive both
use it. Plain threads, no Kafka."""

from __future__ import annotations

import threading
import time

import pytest

from orders_tui.kafka.delivery import CallStuck, call_within


def test_a_call_that_returns_in_time_gives_its_result_and_one_that_fails_its_error():
    done = []
    call_within(1.0, done.append, "sent")
    assert done == ["sent"]

    def refuses() -> None:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        call_within(1.0, refuses)


def test_a_call_that_does_not_return_is_given_up_on_at_its_deadline_and_goes_on():
    release = threading.Event()
    finished = threading.Event()

    def stuck() -> None:
        release.wait(10)
        finished.set()

    started = time.monotonic()
    with pytest.raises(CallStuck, match=r"stuck did not return within 0\.3 s"):
        call_within(0.3, stuck)
    assert 0.3 <= time.monotonic() - started < 1.0
    release.set()  # it was left running, not killed
    assert finished.wait(2)
