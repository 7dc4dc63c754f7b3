"""Where Java's Kafka clients put a keyed record: `Utils.toPositive(Utils.murmur2(key))
% partitions` (org.apache.kafka.common.utils.Utils), written out here independently of
librdkafka, as the reference the tests hold orders-tui's producers to."""

from __future__ import annotations

MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2, as a signed 32-bit int like Java's."""
    m, r = 0x5BD1E995, 24
    h = (0x9747B28C ^ len(data)) & MASK
    whole = len(data) // 4 * 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & MASK
        k ^= k >> r
        k = (k * m) & MASK
        h = (h * m) & MASK
        h ^= k
    tail = data[whole:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * m) & MASK
    h ^= h >> 13
    h = (h * m) & MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions
