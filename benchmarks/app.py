"""The dashboard on a backlog, against the headless engine on the same backlog.

Loads a backlog (default 200,000 orders), runs the headless pipeline over it, then runs
the dashboard (Textual's `run_test`, 120x40, in a child process so its peak RSS is its
own; the dashboard's engine runs in a process of its own, counted too) over the same
backlog in another group, pressing `tab` every 50 ms throughout. Prints the dashboard's
orders/s as a ratio of the engine's (target >= 0.8), the 99th percentile key latency
(target < 200 ms) and the peak RSS (target < 250 MB). Orders/s are timed from the
pipeline's start (before it subscribes, as for the headless run) to the last order done,
as the dashboard sees it (both watched every 10 ms).
Key latency is a real key press, sent through the driver and the bindings, to the first
frame written with its effect (the next pane has the focus): see keys.py, and why not
Textual's pilot `press`.

    python benchmarks/app.py [-b HOST:PORT] [-n 200000] [--rounds 5]
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from _common import fresh_topics, parse_args, report
from consume import pipeline_run
from keys import FrameClock

from orders_tui.domain.retry import Backoff
from orders_tui.domain.rules import FailureRules
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.engine_config import EngineConfig, EngineOptions
from orders_tui.kafka.producer import OrderProducer
from orders_tui.kafka.remote import EngineProcess
from orders_tui.ui.app import OrdersApp

KEY_EVERY = 0.05
POLL_EVERY = 0.01  # the figures change ten times a second; polling faster only costs CPU


def cpu_seconds(pid: int | str) -> float:
    """User + system CPU time of a process, threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int | str) -> float:
    """VmHWM: unlike ru_maxrss, it starts afresh at exec, so a child started from this
    large benchmark process does not inherit the parent's high-water mark."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc: Linux only")


async def drive_app(settings: KafkaSettings, count: int) -> dict[str, float]:
    config = EngineConfig(group=f"bench-app-{uuid.uuid4().hex[:8]}", backoff=Backoff(base=0))
    engine = EngineProcess(settings, EngineOptions(config))
    engine.start()
    app = OrdersApp(engine)
    latencies: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        clock = FrameClock(app)
        start = end = None
        next_key = time.perf_counter()
        while end is None:
            await asyncio.sleep(POLL_EVERY)
            if not app.is_running:
                raise RuntimeError("the dashboard stopped before the backlog was done")
            now = time.perf_counter()
            stats = engine.view().stats  # a fresh snapshot from the engine process each tick
            if start is None and stats.consumed:
                start = stats.started  # as the headless run: from before it subscribed
            if stats.processed + stats.dead_lettered >= count:
                end = time.time()
            if start is not None and now >= next_key:
                latencies.append(await clock.tab())
                next_key = now + KEY_EVERY
        ui_cpu, engine_cpu = cpu_seconds("self"), cpu_seconds(engine.pid)
        await pilot.pause(0.5)
        engine_peak = peak_rss_mb(engine.pid)
    engine.stop()
    latencies.sort()
    return {
        "rate": count / (end - start),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "max_ms": 1000 * latencies[-1],
        "presses": len(latencies),
        "ui_rss_mb": peak_rss_mb("self"),
        "engine_rss_mb": engine_peak,
        "ui_cpu": ui_cpu,
        "engine_cpu": engine_cpu,
    }


def child(argv: list[str]) -> None:
    bootstrap, topic, dlq, count = argv
    settings = KafkaSettings(bootstrap, topic, dlq)
    print(json.dumps(asyncio.run(drive_app(settings, int(count)))))


def dashboard_run(settings: KafkaSettings, count: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", settings.bootstrap_servers, settings.topic,
         settings.dlq_topic, str(count)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], rounds=5)
    settings = fresh_topics(args.bootstrap_servers, args.partitions, "bench-app")
    result = OrderProducer(settings, seed=1).produce(args.count)
    assert result.delivered == args.count, result
    # A warm-up run, not counted: a freshly started broker's JVM has not compiled its
    # produce path yet, and takes several times the CPU for the first DLQ writes.
    pipeline_run(settings, args.count, FailureRules())
    # Interleaved rounds, medians shown: single runs swing by a third on two cores.
    engine_rates, engine_cpus, apps = [], [], []
    for _ in range(args.rounds):
        cpu_before = cpu_seconds("self")
        engine_rates.append(pipeline_run(settings, args.count, FailureRules()))
        engine_cpus.append(cpu_seconds("self") - cpu_before)
        apps.append(dashboard_run(settings, args.count))

    def median(key: str) -> float:
        return statistics.median(app[key] for app in apps)

    report(
        f"dashboard on a backlog of {args.count:,} orders, {args.partitions} partitions, "
        f"medians of {args.rounds} rounds",
        [
            ("headless engine", statistics.median(engine_rates)),
            ("dashboard (run_test, 120x40)", median("rate")),
        ],
        baseline="headless engine",
    )
    print(
        f"  key latency p99 {median('p99_ms'):.1f} ms (max {max(a['max_ms'] for a in apps):.1f} "
        f"ms over {sum(a['presses'] for a in apps)} presses); peak RSS "
        f"{max(a['ui_rss_mb'] + a['engine_rss_mb'] for a in apps):.0f} MB (dashboard "
        f"{max(a['ui_rss_mb'] for a in apps):.0f} MB + engine process "
        f"{max(a['engine_rss_mb'] for a in apps):.0f} MB)"
    )
    print(
        f"  CPU seconds: headless engine {statistics.median(engine_cpus):.1f}; dashboard run: "
        f"engine process {median('engine_cpu'):.1f} + screen {median('ui_cpu'):.1f} "
        f"(start-up included)"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
    else:
        main()
