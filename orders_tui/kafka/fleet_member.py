"""A pipeline as a member of its fleet: its status record out every second, the fleet's
commands in (see status.py for both formats)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from confluent_kafka import KafkaException

from orders_tui.domain.member_status import MemberStatus
from orders_tui.errors import UserError
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.status import Command, ControlFollower, StatusPublisher, ensure_fleet_topics

CONTROL_CATCH_UP = 10.0  # seconds a joining member waits to read the fleet's last command


class FleetMember:
    def __init__(
        self,
        settings: KafkaSettings,
        status_topic: str,
        control_topic: str,
        group: str,
        obey: Callable[[Command], None],
        report: Callable[[str], None],
    ) -> None:
        self._settings = settings
        self._status_topic = status_topic
        self._control_topic = control_topic
        self._group = group
        self._obey = obey
        self._report = report
        self._publisher: StatusPublisher | None = None
        self._control: ControlFollower | None = None

    def join(self, stop: threading.Event) -> None:
        """Status publishing and fleet commands, when the cluster lets this member have
        them: without them it still consumes (a user allowed only its own topics). A
        member joining a paused fleet starts paused: this waits (up to CONTROL_CATCH_UP)
        until the fleet's last command was read and obeyed (under load, one joined and
        consumed a batch first)."""
        try:
            ensure_fleet_topics(self._settings, self._status_topic, self._control_topic)
        except (UserError, KafkaException) as exc:
            self._report(f"no fleet status ({exc}); consuming without it")
            return
        self._publisher = StatusPublisher(self._settings, self._status_topic)
        self._control = ControlFollower(
            self._settings, self._control_topic, self._group, self._obey
        )
        self._control.start()
        deadline = time.monotonic() + CONTROL_CATCH_UP
        while not self._control.caught_up.wait(0.1) and not stop.is_set():
            if time.monotonic() > deadline:
                self._report(
                    f"the control topic did not answer within {CONTROL_CATCH_UP:.0f} s: "
                    "consuming without the fleet's last command"
                )
                break

    @property
    def joined(self) -> bool:
        return self._publisher is not None

    def publish(self, status: MemberStatus) -> None:
        if self._publisher is None:
            return
        # The broker may be away: the next second tries again.
        with contextlib.suppress(KafkaException):
            self._publisher.publish(status)

    def leave(self, timeout: float) -> None:
        """Stop following commands, and send what was published within `timeout`."""
        if self._control is not None:
            self._control.stop()
        if self._publisher is not None:
            self._publisher.close(timeout)
