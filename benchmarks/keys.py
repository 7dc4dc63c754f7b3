"""Key latency as a person sees it: from a key sent through the driver (as a terminal's
would be, so through the bindings) to the first frame written with its effect.

Not Textual's pilot `press`: it returns once the whole process has used less than 1 ms
of CPU in 20 ms, twice over, which in a process whose Kafka clients' threads are busy
measures their load (up to a second a key), not the key.
"""

from __future__ import annotations

import asyncio
import time

from textual import events
from textual.app import App


class FrameClock:
    """Stamps every frame the app writes, with the widget that had the focus."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.frames: list[tuple[float, object]] = []
        display = app._display

        def stamped(screen, update) -> None:
            display(screen, update)
            self.frames.append((time.perf_counter(), app.focused))

        app._display = stamped

    async def tab(self, timeout: float = 10.0) -> float:
        """Press `tab`; seconds until a frame shows the focus moved on."""
        before = self.app.focused
        seen = len(self.frames)
        sent = time.perf_counter()
        self.app._driver.send_message(events.Key("tab", "\t"))
        while time.perf_counter() - sent < timeout:
            await asyncio.sleep(0.001)
            for when, focused in self.frames[seen:]:
                if focused is not None and focused is not before:
                    return when - sent
        raise TimeoutError("tab moved the focus in no frame")
