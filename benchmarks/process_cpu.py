"""Process CPU of `orders-tui consume --headless` against a reference process doing the
same reads, decodes and writes by hand (benchmarks/reference_process.py), on one backlog.

Loads a backlog of orders (default 200,000, `orders-tui produce`'s price mix: a third
above 1000.0 go to the DLQ, 3 % in the transient band to a retry topic), then in
interleaved rounds runs, each as a process of its own, each in a group of its own:

- reference: confluent-kafka + fastavro, the price rules on the first attempt, retry and
  DLQ writes committed with the offsets in a transaction every 100 ms; it stops once it
  has read the backlog;
- pipeline: `orders-tui consume --headless --idle-exit 1`, default rules and exactly-once,
  retries included (they wait out their backoff: idle time, little CPU).

Each figure is the process's user + system CPU seconds, start-up included (the median of
the rounds). Target (issue 24): pipeline <= 1.25 x reference.

    python benchmarks/process_cpu.py [-b HOST:PORT] [-n 200000] [--rounds 3]
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from _common import fresh_topics, parse_args

from orders_tui.kafka.producer import OrderProducer
from orders_tui.kafka.topics import ensure_topics

HERE = Path(__file__).parent


def process_cpu(command: list[str]) -> tuple[float, float]:
    """CPU seconds (user + system) and wall seconds of `command`, run to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], rounds=3)
    settings = fresh_topics(args.bootstrap_servers, args.partitions, "bench-cpu")
    retry_topic = f"{settings.topic}-reference-retry-1"
    ensure_topics(settings, [retry_topic], args.partitions)
    result = OrderProducer(settings, seed=1).produce(args.count)
    assert result.delivered == args.count, result
    bootstrap = args.bootstrap_servers

    def reference() -> list[str]:
        return [sys.executable, str(HERE / "reference_process.py"), bootstrap, settings.topic,
                settings.dlq_topic, retry_topic, str(args.count)]  # fmt: skip

    def pipeline() -> list[str]:
        group = f"bench-cpu-{uuid.uuid4().hex[:8]}"
        return [sys.executable, "-m", "orders_tui", "consume", "--headless", "--idle-exit", "1",
                "-b", bootstrap, "--topic", settings.topic, "--dlq-topic", settings.dlq_topic,
                "--group", group, "--partitions", str(args.partitions)]  # fmt: skip

    env_note = f"{os.cpu_count()} cores"
    figures: dict[str, list[tuple[float, float]]] = {"reference": [], "pipeline": []}
    for _ in range(args.rounds):
        figures["reference"].append(process_cpu(reference()))
        figures["pipeline"].append(process_cpu(pipeline()))
    print(f"process CPU over a backlog of {args.count:,} orders, {args.partitions} partitions "
          f"({env_note}; median of {args.rounds} interleaved rounds)")  # fmt: skip
    cpu = {name: statistics.median(c for c, _ in runs) for name, runs in figures.items()}
    wall = {name: statistics.median(w for _, w in runs) for name, runs in figures.items()}
    for name in figures:
        print(f"  {name:<10} {cpu[name]:6.2f} CPU s   {wall[name]:6.2f} s wall   "
              f"ratio {cpu[name] / cpu['reference']:4.2f}")  # fmt: skip
    print("  (the pipeline's wall time includes --idle-exit's second and retries' backoff)")


if __name__ == "__main__":
    main()
