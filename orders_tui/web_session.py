"""One browser visit of `orders-tui serve`: its `watch` process, and what the page may ask.

A page is input from whoever wrote it, so nothing it sends is trusted: a terminal size
is clamped (a 20,000 x 20,000 session grew to 3.6 GB), a message that is not one of the
few the page sends is ignored with one log line a session, and the session's processes
end with its websocket, whatever they do (textual-serve asked the app to quit and waited
on it for good: a session outlived its client until `serve` stopped)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal

from textual_serve.app_service import AppService

MAX_WIDTH, MAX_HEIGHT = 500, 200
QUIT_GRACE = 3.0  # seconds a session has to quit when asked, before its group is ended
KILL_GRACE = 2.0  # after SIGTERM, before SIGKILL

log = logging.getLogger("orders-tui.serve")


def clamp_size(width: object, height: object) -> tuple[int, int] | None:
    """A terminal size within bounds, or None when it is not a pair of numbers."""
    try:
        columns, rows = int(width), int(height)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return None
    return max(1, min(columns, MAX_WIDTH)), max(1, min(rows, MAX_HEIGHT))


def parse_message(text: str) -> tuple[str, object] | None:
    """A websocket message as (type, data), or None for anything the page never sends."""
    try:
        envelope = json.loads(text)
    except ValueError:
        return None
    if not isinstance(envelope, list) or not envelope or not isinstance(envelope[0], str):
        return None
    kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
    if kind == "stdin" and not isinstance(data, str):
        return None
    if kind == "resize" and not (
        isinstance(data, dict) and clamp_size(data.get("width"), data.get("height"))
    ):
        return None
    if kind not in ("stdin", "resize", "ping", "blur", "focus"):
        return None
    return kind, data


class Session(AppService):
    """textual-serve's app service, with the process in a process group of its own that
    ends when the session does."""

    async def _open_app_process(
        self, width: int = 80, height: int = 24
    ) -> asyncio.subprocess.Process:
        environment = self._build_environment(width=width, height=height)
        self._process = process = await asyncio.create_subprocess_shell(
            self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
            start_new_session=True,  # its own process group: ended whole, below
        )
        self._stdin = process.stdin
        return process

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def stop(self) -> None:
        """Ask the app to quit; end its process group if it has not within QUIT_GRACE."""
        task = self._task
        if task is None:
            return
        with contextlib.suppress(Exception):
            await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
            await asyncio.wait_for(self.send_meta({"type": "quit"}), 1.0)
        # The task ends when the app's stdout closes, that is once every process of the
        # group has exited: while it runs, the group has members to signal.
        done, _ = await asyncio.wait({task}, timeout=QUIT_GRACE)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if done:
                break
            self._signal_group(sig)
            done, _ = await asyncio.wait({task}, timeout=KILL_GRACE)
        if not done:
            task.cancel()
        self._task = None

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)
