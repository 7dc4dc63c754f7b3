"""The murmur2 reference itself, against the values Kafka's own tests give
(org.apache.kafka.common.utils.UtilsTest)."""

import pytest

from tests.java_partitioner import java_partition, murmur2


@pytest.mark.parametrize(
    ("text", "expected"),
    [("21", -973932308), ("foobar", -790332482), ("a-little-bit-long-string", -985981536),
     ("a-little-bit-longer-string", -1486304829),
     ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971), ("abc", 479470107)],
)  # fmt: skip
def test_murmur2_gives_what_kafka_gives(text, expected):
    assert murmur2(text.encode()) == expected


def test_the_partition_is_the_positive_hash_modulo_the_count():
    assert java_partition(b"21", 3) == (-973932308 & 0x7FFFFFFF) % 3
