"""The engine in a process of its own, behind the same interface as `Engine`.

In one process the dashboard's event loop and the pipeline thread share one interpreter
lock: every frame painted was time the pipeline did not run (the dashboard consumed at
about 0.4 of the headless rate). Here the engine runs in a child process and sends one
snapshot a tick: the newest rows for each pane, every other event, and its figures.
The child exits when asked, or by itself when the pipe to the dashboard closes.
"""

from __future__ import annotations

import contextlib
import faulthandler
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path

from orders_tui.kafka.commands import EngineCommand, SetPaused, SetStreaming, Stop
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.engine import Engine, coalesce
from orders_tui.kafka.engine_api import EngineView
from orders_tui.kafka.engine_config import EngineOptions
from orders_tui.kafka.events import EngineEnded, EventQueue

LOG_LINES_SHOWN = 5  # of engine.log, when the engine ends unasked

ENGINE_LOG = Path.home() / ".cache" / "orders-tui" / "engine.log"
SNAPSHOT_EVERY = 0.1  # seconds: the dashboard's tick


@dataclass(frozen=True)
class Snapshot:
    """What the child sends every SNAPSHOT_EVERY: the events since the last, and its view."""

    events: list
    view: EngineView


def _serve(conn: Connection, settings: KafkaSettings, options: EngineOptions) -> None:
    # The dashboard owns the terminal: anything the engine prints goes to a log file.
    ENGINE_LOG.parent.mkdir(parents=True, exist_ok=True)
    log = ENGINE_LOG.open("a", encoding="utf-8")
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    print(_start_line(os.getpid()), flush=True)
    faulthandler.enable()  # a crash in C (a segfault) leaves its Python stack in the log
    engine = Engine(settings, options=options)
    engine.start()
    try:
        while True:
            try:
                if conn.poll(SNAPSHOT_EVERY):
                    command: EngineCommand = conn.recv()
                    if isinstance(command, Stop):
                        break
                    engine.send(command)
                conn.send(Snapshot(coalesce(engine.events.drain()), engine.view()))
            except (EOFError, BrokenPipeError, ConnectionResetError):
                break  # the dashboard is gone
    finally:
        engine.stop(timeout=1.8)
        conn.close()


def _start_line(pid: int) -> str:
    return f"--- orders-tui engine {pid} started {time.strftime('%Y-%m-%d %H:%M:%S')}"


def how_it_ended(exitcode: int | None) -> str:
    if exitcode is None:
        return "it stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by {name}"
    return f"exit status {exitcode}"


def last_log_lines(pid: int | None, log: Path = ENGINE_LOG) -> list[str]:
    """What the engine `pid` printed last: the log's lines since its start line."""
    try:
        with log.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - 16_384))
            lines = file.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    marker = f"--- orders-tui engine {pid} started"
    starts = [i for i, line in enumerate(lines) if line.startswith(marker)]
    if starts:
        lines = lines[starts[-1] + 1 :]
    lines = [line for line in lines if line.strip()]
    # A crash's report (faulthandler's) says the most in its first lines: the error, then
    # the innermost frames of the thread that crashed.
    crashes = [i for i, line in enumerate(lines) if line.startswith("Fatal Python error")]
    if crashes:
        return lines[crashes[0] : crashes[0] + LOG_LINES_SHOWN]
    return lines[-LOG_LINES_SHOWN:]


class EngineProcess:
    """The engine in a child process: each command is one message to the child, and the
    child sends a snapshot of its view (with the events since the last) ten times a
    second."""

    def __init__(self, settings: KafkaSettings, options: EngineOptions | None = None) -> None:
        self.settings = settings
        self.options = options or EngineOptions()
        self.events = EventQueue()
        self._view = EngineView()  # the child's latest, replaced whole by the link thread
        # What this side asked last: shown at once, before the child's next snapshot.
        self._paused = False
        self._streaming = False
        self._ended_why: str | None = None  # why the engine process ended unasked
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._send_lock = threading.Lock()
        self._stopping = False

    def start(self) -> None:
        """Start the engine process. Call it before the dashboard runs: Textual swaps
        sys.stderr for a capture without a file descriptor, which multiprocessing needs
        when it spawns. Calling it again does nothing."""
        if self._process is not None:
            return
        context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        ours, theirs = context.Pipe()
        self._conn = ours
        self._process = context.Process(
            target=_serve,
            args=(theirs, self.settings, self.options),
            daemon=True,
            name="orders-tui-engine",
        )
        self._process.start()
        theirs.close()
        threading.Thread(target=self._receive, name="orders-tui-engine-link", daemon=True).start()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _receive(self) -> None:
        conn = self._conn
        while True:
            try:
                snapshot: Snapshot = conn.recv()
            except (EOFError, OSError):
                if not self._stopping:
                    self._ended()
                return
            self.events.put_all(snapshot.events)
            self._view = snapshot.view
            self._streaming = snapshot.view.streaming

    def _ended(self) -> None:
        """The child is gone unasked (a crash, a kill): say how, and what it said last."""
        process = self._process
        process.join(1.0)
        lines = last_log_lines(process.pid)
        why = f"the engine process ended ({how_it_ended(process.exitcode)})"
        if lines:
            why += f"; the last lines of {ENGINE_LOG}:\n" + "\n".join(lines)
        else:
            why += f"; see {ENGINE_LOG}"
        self._ended_why = why
        self.events.put(EngineEnded(why))

    def _send(self, command: EngineCommand) -> None:
        if self._conn is None:
            return
        # The child gone means the dashboard is closing; a lost request is moot then.
        with self._send_lock, contextlib.suppress(BrokenPipeError, OSError):
            self._conn.send(command)

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the child to stop (it commits what is done), wait up to `timeout`."""
        if self._process is None:
            return
        self._stopping = True
        self._send(Stop())
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.terminate()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def view(self) -> EngineView:
        view = replace(self._view, paused=self._paused, streaming=self._streaming)
        if self._ended_why is not None:
            return replace(view, connected=False, ended=self._ended_why)
        return view

    def send(self, command: EngineCommand) -> None:
        """To the child, whose engine applies the replay policy (a refusal comes back
        as a notice); a pause or stream request shows here at once."""
        match command:
            case SetPaused(paused):
                self._paused = paused
            case SetStreaming(on):
                self._streaming = on
            case Stop():
                self.stop()
                return
        self._send(command)
