"""Ten browser sessions of `orders-tui serve` on one machine, against a bare
confluent-kafka reader process.

Starts `orders-tui serve` over a topic with a fleet of one headless worker streaming
orders at --rate, opens ten tabs in headless Chromium (Playwright, Debian's
`/usr/bin/chromium`), and measures:

- time to first paint: from asking for the page to the first screen (the Aggregates
  pane) arriving on its websocket, per tab;
- RSS per session: each visit's `orders-tui watch` process, its shell included, once
  all ten are up;
- CPU with all ten idle (no key pressed, orders still arriving), over 10 s, of the
  sessions together and of the server.

Baseline, measured in the same run: a process holding one bare confluent-kafka consumer
reading the same topic (RSS, and CPU over the same 10 s).

    python benchmarks/serve.py [-b HOST:PORT] [--rate 50]
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import fresh_topics, parse_args
from app import cpu_seconds
from playwright.sync_api import sync_playwright

SESSIONS = 10
IDLE_SECONDS = 10
CHROMIUM = "/usr/bin/chromium"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if f"PPid:\t{pid}\n" in (proc / "status").read_text():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def bare_reader(bootstrap: str, topic: str) -> subprocess.Popen:
    code = (
        "import sys; from confluent_kafka import Consumer\n"
        "c = Consumer({'bootstrap.servers': sys.argv[1], 'group.id': 'bench-serve-bare',"
        " 'auto.offset.reset': 'latest'})\n"
        "c.subscribe([sys.argv[2]])\n"
        "while True: c.consume(500, 0.2)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code, bootstrap, topic])


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], extra=[("--rate", {"type": float, "default": 50.0})])
    settings = fresh_topics(args.bootstrap_servers, args.partitions, "bench-serve")
    base = ["-b", settings.bootstrap_servers, "--topic", settings.topic,
            "--dlq-topic", settings.dlq_topic, "--group", "bench-serve"]  # fmt: skip
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    worker = subprocess.Popen([sys.executable, "-m", "orders_tui", "consume", "--headless",
                               *base], **quiet)  # fmt: skip
    streamer = subprocess.Popen([sys.executable, "-m", "orders_tui", "produce", "-n",
                                 str(int(args.rate * 600)), "--rate", str(args.rate), *base[:6]],
                                stdout=subprocess.DEVNULL)  # fmt: skip
    port = 18000 + os.getpid() % 1000
    server = subprocess.Popen([sys.executable, "-m", "orders_tui", "serve", "--port", str(port),
                               *base], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert "serving" in server.stderr.readline()
    bare = bare_reader(settings.bootstrap_servers, settings.topic)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"],
            )  # fmt: skip
            paints = []
            for _ in range(SESSIONS):
                frames: list[str] = []
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.on("websocket", lambda ws, f=frames: ws.on(
                    "framereceived",
                    lambda d, f=f: f.append(d.decode("utf-8", "replace")
                                            if isinstance(d, bytes) else d)))  # fmt: skip
                asked = time.monotonic()
                page.goto(f"http://127.0.0.1:{port}/")
                while "Aggregates" not in ANSI.sub("", "".join(frames)):
                    page.wait_for_timeout(20)
                paints.append(time.monotonic() - asked)
            page.wait_for_timeout(3000)  # every session settled
            shells = children(server.pid)
            sessions = [pid for shell in shells for pid in [shell, *children(shell)]]
            per_session = [rss_mb(shell) + sum(rss_mb(c) for c in children(shell))
                           for shell in shells]  # fmt: skip
            cpu_before = {pid: cpu_seconds(pid) for pid in [*sessions, server.pid, bare.pid]}
            page.wait_for_timeout(IDLE_SECONDS * 1000)

            def cpu_share(pids: list[int]) -> float:
                return sum(cpu_seconds(pid) - cpu_before[pid] for pid in pids) / IDLE_SECONDS

            sessions_cpu, server_cpu = cpu_share(sessions), cpu_share([server.pid])
            bare_cpu, bare_rss = cpu_share([bare.pid]), rss_mb(bare.pid)
            browser.close()
    finally:
        for proc in (server, bare, worker, streamer):
            proc.terminate()
    print(f"{SESSIONS} browser sessions of orders-tui serve, orders arriving at "
          f"{args.rate:g}/s, one headless worker")  # fmt: skip
    print(f"  time to first paint: median {statistics.median(paints):.2f} s, "
          f"max {max(paints):.2f} s")  # fmt: skip
    print(f"  RSS per session: median {statistics.median(per_session):.0f} MB "
          f"(bare confluent-kafka reader process {bare_rss:.0f} MB, ratio "
          f"{statistics.median(per_session) / bare_rss:.1f})")  # fmt: skip
    print(
        f"  CPU, all {SESSIONS} idle: {sessions_cpu:.2f} of a core together "
        f"({sessions_cpu / SESSIONS:.3f} each; bare reader {bare_cpu:.3f}, ratio "
        f"{sessions_cpu / SESSIONS / max(bare_cpu, 1e-3):.1f}); server {server_cpu:.3f}"
    )


if __name__ == "__main__":
    main()
