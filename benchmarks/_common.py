"""Shared by the benchmarks: a fresh topic pair on the broker, and printing figures."""

from __future__ import annotations

import argparse
import os
import uuid

from orders_tui.kafka.config import DEFAULT_BOOTSTRAP, KafkaSettings
from orders_tui.kafka.topics import ensure_topics


def parse_args(
    description: str,
    default_count: int = 200_000,
    rounds: int | None = None,
    extra: list[tuple[str, dict]] = (),
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "-b",
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP),
    )
    parser.add_argument("-n", "--count", type=int, default=default_count)
    parser.add_argument("--partitions", type=int, default=3)
    if rounds is not None:
        parser.add_argument(
            "--rounds", type=int, default=rounds, help="interleaved runs; medians are shown"
        )
    for flag, options in extra:
        parser.add_argument(flag, **options)
    return parser.parse_args()


def fresh_topics(bootstrap: str, partitions: int, prefix: str) -> KafkaSettings:
    suffix = uuid.uuid4().hex[:8]
    settings = KafkaSettings(bootstrap, f"{prefix}-{suffix}", f"{prefix}-dlq-{suffix}")
    ensure_topics(settings, [settings.topic, settings.dlq_topic], partitions)
    return settings


def report(title: str, rows: list[tuple[str, float]], baseline: str) -> None:
    base = dict(rows)[baseline]
    print(title)
    for name, rate in rows:
        print(f"  {name:<44} {rate:>12,.0f} orders/s   ratio {rate / base:5.2f}")
