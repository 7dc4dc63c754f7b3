"""Errors the Kafka clients report outside a call's result: which mean "replace the
consumer", which end the run (with one line saying what to do), which are only said."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, Message

from orders_tui.errors import KafkaRefused
from orders_tui.kafka.access import is_authorization_failure, not_authorized_text
from orders_tui.kafka.delivery import refusal
from orders_tui.kafka.pipeline.run_state import RunState


def fenced_instance(error: KafkaError) -> bool:
    """A fatal consumer error saying another member took our group.instance.id: as the
    broker's code, or wrapped as librdkafka's _FATAL when it comes with a message."""
    return error.code() == KafkaError.FENCED_INSTANCE_ID or (
        error.code() == KafkaError._FATAL
        and "fenced" in error.str()
        and "group.instance.id" in error.str()
    )


def instance_still_held(error: KafkaError) -> bool:
    """KIP-848's protocol: a static member killed without leaving keeps its
    group.instance.id until its session ends (45 s by default), and refuses our restart
    meanwhile, as a fatal error ("The instance ID is still used by another member")."""
    return error.code() == KafkaError.UNRELEASED_INSTANCE_ID or (
        error.code() == KafkaError._FATAL and "instance ID is still used" in error.str()
    )


def protocol_unsupported(error: KafkaError) -> bool:
    """-X group.protocol=consumer on a broker without KIP-848's protocol (before Kafka
    4.0, or with it switched off): "API version not supported: ConsumerGroupHeartbeat"."""
    return "ConsumerGroupHeartbeat" in error.str() and "not supported" in error.str()


class ClientErrors:
    def __init__(self, state: RunState) -> None:
        self.state = state

    def on_fatal(self, error: KafkaError) -> None:
        """The consumer failed for good: replaced by the loop (outside the callback) when
        its instance id was taken by our own predecessor; else the run ends."""
        state = self.state
        if fenced_instance(error):
            state.fenced = state.fenced or error.str()
        elif instance_still_held(error):
            if state.held_since is None:
                state.held_since = time.monotonic()
            state.fenced = state.fenced or error.str()
        elif protocol_unsupported(error):
            state.refuse(
                KafkaRefused(
                    f"this Kafka does not offer KIP-848's consumer group protocol ({error.str()}): "
                    "it needs Kafka 4.0 or later with it enabled; drop -X group.protocol=consumer"
                )
            )
        else:
            state.refuse(KafkaRefused(f"Kafka error: {error.str()}"))

    def on_message_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        state = self.state
        # A fatal error reaches consume() as a message too: after an outage, a static
        # member fenced by its own successor got only this, and stayed alive consuming
        # nothing (5.5 minutes, 90,491 orders waiting) when it was only reported.
        if error.fatal() or error.code() == KafkaError._FATAL:
            self.on_fatal(error)
            return
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise KafkaRefused(
                f"a topic the pipeline reads is gone (deleted?): {error.str()}; "
                "create it again, or point --topic at another"
            )
        if error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
            state.refuse(
                KafkaRefused(not_authorized_text(state.settings, error, "Read", state.config.group))
            )
            return
        if is_authorization_failure(error):
            state.refuse(
                KafkaRefused(
                    not_authorized_text(state.settings, error, "Read", ", ".join(state.topics))
                )
            )
            return
        state.reports.report("consumer", f"consumer error: {error.str()}", error=True)

    def on_refused(self, error: KafkaError, msg: Message) -> None:
        """A retry or DLQ record failed for good (too large for the topic, not authorised,
        a time limit set with -X): stop, with its source offset not committed."""
        if self.state.delivery.refuses(error):
            self.state.refuse(KafkaRefused(refusal(msg.topic() if msg else "?", error)))
