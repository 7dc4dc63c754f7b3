"""Screenshots for the README, from the real app against a running broker.

    .venv/bin/python scripts/screenshots.py [-b HOST:PORT]

Uses fresh topics, produces a few batches with `p`, waits for the panes to fill, then
saves docs/dashboard.svg (120x40), docs/dashboard-80x24.svg, docs/dlq-entry.svg,
docs/workbench.svg (the DLQ workbench with its triage and two entries selected) and
docs/watch.svg (`orders-tui watch` over three headless workers, orders streaming in) and
docs/serve.png (the same, served by `orders-tui serve` to headless Chromium).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

from orders_tui.domain.retry import Backoff
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.engine_config import EngineConfig, EngineOptions
from orders_tui.kafka.observer import Observer
from orders_tui.kafka.remote import EngineProcess
from orders_tui.kafka.topics import ensure_topics
from orders_tui.ui.app import OrdersApp

DOCS = Path(__file__).resolve().parents[1] / "docs"


async def shoot(bootstrap: str, size: tuple[int, int], name: str, view: str = "") -> None:
    suffix = uuid.uuid4().hex[:6]
    settings = KafkaSettings(bootstrap, f"orders-demo-{suffix}", f"orders-demo-dlq-{suffix}")
    options = EngineOptions(EngineConfig(backoff=Backoff(base=1.0)), batch_size=40, seed=3)
    engine = EngineProcess(settings, options)
    engine.start()
    app = OrdersApp(engine)
    async with app.run_test(size=size) as pilot:
        deadline = time.monotonic() + 30
        while not (app.connected and engine.view().stats.started) and time.monotonic() < deadline:
            await pilot.pause(0.2)
        for _ in range(3):
            await pilot.press("p")
            await pilot.pause(1.0)
        await pilot.pause(1.5)  # some retries still waiting, some done
        if view == "entry":
            app.dlq.focus()
            await pilot.press("up", "enter")
            await pilot.pause(0.3)
        elif view == "workbench":
            await pilot.press("w")
            workbench = app.screen.workbench
            while workbench.view.scanning or not workbench.view.window:
                await pilot.pause(0.2)
            await pilot.press("t", "up", "up", "up", "space", "space")
            await pilot.pause(0.5)
        app.save_screenshot(filename=name, path=str(DOCS))
        if view == "workbench":
            await pilot.press("escape")
        await pilot.press("q")
    engine.stop()


def start_fleet(bootstrap: str) -> tuple[KafkaSettings, str, list[subprocess.Popen]]:
    """Fresh topics and three headless workers on them."""
    suffix = uuid.uuid4().hex[:6]
    settings = KafkaSettings(bootstrap, f"orders-fleet-{suffix}", f"orders-fleet-dlq-{suffix}")
    ensure_topics(settings, [settings.topic, settings.dlq_topic], 6)
    group = f"billing-{suffix}"
    workers = [
        subprocess.Popen([sys.executable, "-m", "orders_tui", "consume", "--headless",
                          "-b", bootstrap, "--topic", settings.topic, "--dlq-topic",
                          settings.dlq_topic, "--group", group, "--instance-id", f"worker-{n}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for n in range(3)
    ]  # fmt: skip
    return settings, group, workers


def shoot_served(bootstrap: str) -> None:
    from playwright.sync_api import sync_playwright

    settings, group, workers = start_fleet(bootstrap)
    flags = ["-b", bootstrap, "--topic", settings.topic, "--dlq-topic", settings.dlq_topic]
    streamer = subprocess.Popen([sys.executable, "-m", "orders_tui", "produce", "-n", "20000",
                                 "--rate", "150", *flags], stdout=subprocess.DEVNULL)  # fmt: skip
    server = subprocess.Popen([sys.executable, "-m", "orders_tui", "serve", "--port", "18765",
                               "--group", group, *flags], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        time.sleep(8)  # the workers joined and report
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--no-sandbox", "--disable-gpu",
                                              "--disable-background-networking"])  # fmt: skip
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.goto("http://127.0.0.1:18765/")
            page.wait_for_timeout(10_000)
            page.screenshot(path=str(DOCS / "serve.png"))
            browser.close()
    finally:
        for proc in (server, streamer, *workers):
            proc.terminate()


async def shoot_watch(bootstrap: str) -> None:
    settings, group, workers = start_fleet(bootstrap)
    options = EngineOptions(EngineConfig(group=group), rate=200, seed=3)
    app = OrdersApp(Observer(settings, options))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            while not (
                app.engine.view().fleet and len(app.engine.view().fleet.live(time.time())) == 3
            ):
                await pilot.pause(0.2)
            await pilot.pause(3.0)  # the group settles its partitions
            await pilot.press("P")
            await pilot.pause(8.0)
            app.save_screenshot(filename="watch.svg", path=str(DOCS))
            await pilot.press("P", "q")
    finally:
        for worker in workers:
            worker.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-b", "--bootstrap-servers", default="localhost:9092")
    parser.add_argument("--only", choices=["watch", "serve"], help="just this one")
    args = parser.parse_args()
    if args.only == "watch":
        asyncio.run(shoot_watch(args.bootstrap_servers))
        return
    if args.only == "serve":
        shoot_served(args.bootstrap_servers)
        return
    DOCS.mkdir(exist_ok=True)
    asyncio.run(shoot(args.bootstrap_servers, (120, 40), "dashboard.svg"))
    asyncio.run(shoot(args.bootstrap_servers, (80, 24), "dashboard-80x24.svg"))
    asyncio.run(shoot(args.bootstrap_servers, (120, 40), "dlq-entry.svg", "entry"))
    asyncio.run(shoot(args.bootstrap_servers, (130, 36), "workbench.svg", "workbench"))
    asyncio.run(shoot_watch(args.bootstrap_servers))
    shoot_served(args.bootstrap_servers)


if __name__ == "__main__":
    main()
