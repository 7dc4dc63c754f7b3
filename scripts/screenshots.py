"""Screenshots for the README, from the real app against a running broker.

    .venv/bin/python scripts/screenshots.py [-b HOST:PORT]

Uses fresh topics, produces a few batches with `p`, waits for the panes to fill, then
saves docs/dashboard.svg (120x40), docs/dashboard-80x24.svg, docs/dlq-entry.svg and
docs/workbench.svg (the DLQ workbench with its triage and two entries selected).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path

from orders_tui.domain.retry import Backoff
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.consumer import EngineConfig
from orders_tui.kafka.engine import EngineOptions
from orders_tui.kafka.remote import EngineProcess
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
        while not (app.connected and engine.stats.started) and time.monotonic() < deadline:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-b", "--bootstrap-servers", default="localhost:9092")
    args = parser.parse_args()
    DOCS.mkdir(exist_ok=True)
    asyncio.run(shoot(args.bootstrap_servers, (120, 40), "dashboard.svg"))
    asyncio.run(shoot(args.bootstrap_servers, (80, 24), "dashboard-80x24.svg"))
    asyncio.run(shoot(args.bootstrap_servers, (120, 40), "dlq-entry.svg", "entry"))
    asyncio.run(shoot(args.bootstrap_servers, (130, 36), "workbench.svg", "workbench"))


if __name__ == "__main__":
    main()
