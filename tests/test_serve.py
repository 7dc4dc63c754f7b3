"""`orders-tui serve` in a real browser: Debian's Chromium, driven headless by Playwright,
against the real broker. What the page shows is read from the terminal stream its
websocket carries (xterm.js paints a canvas, so there is no DOM text to read)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from orders_tui.kafka.producer import OrderProducer
from tests.kafka_helpers import group_members, read_all

pytestmark = pytest.mark.kafka

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

TOKEN = "t0k3n-for-the-test"
SECRET = "not-for-any-browser-4242"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, settings, group: str, *flags: str) -> None:
        self.port = free_port()
        self.said = ""  # its stderr, once stopped
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orders_tui", "serve", "--port", str(self.port),
             "-b", settings.bootstrap_servers, "--topic", settings.topic,
             "--dlq-topic", settings.dlq_topic, "--group", group,
             # a secret-looking property, harmless on a plaintext connection
             "-X", f"ssl.key.password={SECRET}", *flags],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "ORDERS_TUI_AUTH_TOKEN": TOKEN},
        )  # fmt: skip
        self.first_lines = ""  # up to the one that says where it serves
        while "serving the dashboard on" not in self.first_lines:
            line = self.process.stderr.readline()
            if not line:  # it stopped
                raise AssertionError(f"serve stopped: {self.first_lines}")
            self.first_lines += line

    def status(self, path: str, **headers: str) -> int:
        try:
            return urllib.request.urlopen(
                urllib.request.Request(self.url + path, headers=headers), timeout=10
            ).status
        except urllib.error.HTTPError as error:
            return error.code

    def stop(self) -> None:
        """Stopped with browsers still connected, it ends their sessions within 5 s."""
        self.process.terminate()
        assert self.process.wait(5) == 0
        out, err = self.process.communicate()
        self.said = self.first_lines + out + err


@pytest.fixture
def browser() -> Iterator[object]:
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium: `make browser` installs Debian's (as root)")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield launched
        launched.close()


class Page:
    """A browser tab on the dashboard, and the screen text its websocket brought."""

    def __init__(self, browser, url: str) -> None:
        self.frames: list[str] = []
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        self.response = self.page.goto(url)

    def _frame(self, payload: str | bytes) -> None:
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        self.frames.append(text)

    def press(self, *keys: str) -> None:
        self.page.mouse.click(700, 450)  # the terminal takes the keyboard once clicked
        for key in keys:
            self.page.keyboard.press(key)

    def text(self) -> str:
        return ANSI.sub("", "".join(self.frames))

    def wait_for(self, condition, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out: {what}"
            self.page.wait_for_timeout(200)


def session_processes(server_pid: int) -> list[str]:
    """The command lines of the server's children (one `watch` per visit)."""
    lines = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"PPid:\t{server_pid}\n" in status or "orders_tui watch" in cmdline:
            lines.append(cmdline)
    return lines


def test_the_served_dashboard_shows_orders_takes_keys_and_keeps_its_secrets(
    settings, group, browser
):
    orders = []
    OrderProducer(settings, seed=81, on_order=orders.append).produce(5)
    served = Served(settings, group, "--allow-actions")
    try:
        assert served.status("/") == 401  # no token, no page
        assert served.status("/ws") == 401
        assert served.status("/?token=wrong") == 401
        assert served.status("/", Authorization=f"Bearer {TOKEN}") == 200

        page = Page(browser, f"{served.url}/?token={TOKEN}")
        assert page.response.status == 200
        page.wait_for(lambda: orders[-1].product in page.text(), "a produced order shown")
        page.wait_for(lambda: "members" in page.text(), "the fleet's rows (Aggregates)")
        assert "read-only" not in page.text()

        page.press("p")  # the dashboard's default batch: 15 orders
        page.wait_for(lambda: len(read_all(settings.bootstrap_servers, settings.topic)) == 20,
                      "the batch produced")  # fmt: skip
        newest = max(read_all(settings.bootstrap_servers, settings.topic),
                     key=lambda m: (m.timestamp()[1], m.offset()))  # fmt: skip
        page.wait_for(lambda: newest.key().decode()[:8] in page.text(), "the batch shown")
        page.page.screenshot(path=str(Path(os.environ.get("ORDERS_TUI_SCREENSHOT_DIR", "/tmp"))
                                      / "serve.png"))  # fmt: skip

        commands = session_processes(served.process.pid)
        assert any("orders_tui watch" in c for c in commands), commands
        assert not any(SECRET in c for c in commands) and not any(TOKEN in c for c in commands)
        assert SECRET not in page.page.content() and SECRET not in page.text()
        properties = Path(re.search(r"-F (\S+)", " ".join(commands)).group(1))
        assert properties.stat().st_mode & 0o077 == 0  # this user's alone
        assert SECRET in properties.read_text()
        assert group_members(settings, group) == 0  # the session never joined
    finally:
        served.stop()
    assert not properties.exists()  # removed at the stop
    assert TOKEN not in served.said  # no request line logged


def test_read_only_is_the_default_and_the_page_says_so(settings, group, browser):
    OrderProducer(settings, seed=82).produce(3)
    served = Served(settings, group)
    try:
        page = Page(browser, f"{served.url}/?token={TOKEN}")
        page.wait_for(lambda: "read-only" in page.text(), "the header says read-only")
        page.press("p", "Space")
        page.page.wait_for_timeout(1500)
        assert len(read_all(settings.bootstrap_servers, settings.topic)) == 3  # nothing sent
        assert "PAUSED" not in page.text()
        assert "Quit" in page.text() and "Produce" not in page.text()  # gone from the footer
    finally:
        served.stop()


def test_an_address_beyond_this_machine_is_served_with_a_warning(settings, group):
    served = Served(settings, group, "--host", "0.0.0.0")
    served.stop()
    assert served.first_lines.startswith(
        f"orders-tui: warning: listening on 0.0.0.0: anyone who can reach port {served.port} "
        "can see the data"
    )


def test_a_port_it_cannot_listen_on_is_one_line_and_leaves_no_properties_file(settings, tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    serve = [sys.executable, "-m", "orders_tui", "serve", "-b", settings.bootstrap_servers,
             "--topic", settings.topic, "--dlq-topic", settings.dlq_topic]  # fmt: skip
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # where the properties file would go
    try:
        done = subprocess.run([*serve, "--port", str(port)], capture_output=True, text=True,
                              timeout=60, env=env)  # fmt: skip
    finally:
        taken.close()
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"orders-tui: cannot listen on 127.0.0.1:{port}: error while attempting to bind on "
        f"address ('127.0.0.1', {port}): address already in use; choose another --port (or "
        "--host)"
    ]
    assert list(tmp_path.iterdir()) == []
    bad = subprocess.run([*serve, "--port", "99999"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.splitlines()[-1].endswith(
        "argument --port: expected a whole number from 1 to 65535, got 99999"
    )
