"""A partition's offsets asked again while its leader is being elected
(orders_tui/kafka/topics.py): right after the broker started, the dashboard's DLQ pane
asked once, got "Not leader for partition" and stayed empty for the session."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from orders_tui.kafka.topics import watermarks


class Electing:
    def __init__(self, answers: list) -> None:
        self.answers = answers
        self.asked = 0

    def get_watermark_offsets(self, partition, timeout):
        self.asked += 1
        answer = self.answers.pop(0)
        if isinstance(answer, KafkaError):
            raise KafkaException(answer)
        return answer


def test_a_partition_without_a_leader_yet_is_asked_again():
    consumer = Electing([KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION),
                         KafkaError(KafkaError.LEADER_NOT_AVAILABLE), (0, 42)])  # fmt: skip
    assert watermarks(consumer, TopicPartition("orders-dlq", 0)) == (0, 42)
    assert consumer.asked == 3


def test_any_other_answer_is_given_at_once():
    consumer = Electing([KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED), (0, 1)])
    with pytest.raises(KafkaException):
        watermarks(consumer, TopicPartition("orders-dlq", 0))
    assert consumer.asked == 1
