"""`orders-tui serve` in a real browser: Debian's Chromium, driven headless by Playwright,
against the real broker. What the page shows is read from the terminal stream its
websocket carries (xterm.js paints a canvas, so there is no DOM text to read)."""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
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
    def __init__(self, settings, group: str, *flags: str, **env: str) -> None:
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
            env={**os.environ, "ORDERS_TUI_AUTH_TOKEN": TOKEN, **env},
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


# ---- what is not its own page ------------------------------------------------------

ATTACKER_PAGE = """<html><body><script>
window.result = "pending"; window.frames_seen = 0;
const ws = new WebSocket("ws://127.0.0.1:%d/ws?width=80&height=24");
ws.onopen = () => { window.result = "open"; ws.send(JSON.stringify(["stdin", "p"])); };
ws.onmessage = () => { window.frames_seen += 1; };
ws.onerror = () => { if (window.result === "pending") window.result = "refused"; };
ws.onclose = () => { if (window.result === "pending") window.result = "refused"; };
</script></body></html>"""


@contextlib.contextmanager
def attacker_site(served_port: int) -> Iterator[int]:
    """A page on another port of this host (same site, another origin) that opens the
    dashboard's websocket, as any page a user visits could."""
    page = (ATTACKER_PAGE % served_port).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def _sessions_started(served: Served) -> int:
    """`watch` processes this server started (not another test's, run alongside)."""
    count = 0
    for pid in _children(served.process.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        count += "orders_tui watch" in cmdline and not cmdline.startswith("/bin/sh")
    return count


@pytest.mark.parametrize("with_token", [False, True], ids=["no-token", "token-cookie"])
def test_a_page_of_another_origin_cannot_open_the_dashboard(settings, group, browser, with_token):
    """Without a token any page could read the dashboard, and with --allow-actions press
    its keys; with one, a page on another port of the same host is the same *site*, so it
    got the SameSite=Strict cookie. The websocket's Origin must be the server's."""
    OrderProducer(settings, seed=83).produce(3)
    served = Served(settings, group, "--allow-actions",
                    **({} if with_token else {"ORDERS_TUI_AUTH_TOKEN": ""}))  # fmt: skip
    try:
        context = browser.new_context()
        if with_token:  # the user's own visit leaves the cookie in this browser
            own = context.new_page()
            assert own.goto(f"{served.url}/?token={TOKEN}").status == 200
            own.close()
        with attacker_site(served.port) as port:
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function("window.result !== 'pending'", timeout=15_000)
            page.wait_for_timeout(1000)
            assert page.evaluate("window.result") == "refused"
            assert page.evaluate("window.frames_seen") == 0
        assert _sessions_started(served) <= (0 if not with_token else 1)
        assert len(read_all(settings.bootstrap_servers, settings.topic)) == 3  # no `p` got in
        context.close()
    finally:
        served.stop()


def _raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_a_foreign_host_name_is_refused_and_bearer_is_any_case(settings, group):
    """A DNS rebinding reaches 127.0.0.1 under the attacker's name: its Host says so."""
    served = Served(settings, group)
    try:
        assert served.status("/", Authorization=f"Bearer {TOKEN}") == 200
        assert served.status("/", Authorization=f"bearer {TOKEN}") == 200  # RFC 7235
        assert served.status("/", Authorization=f"BEARER {TOKEN}") == 200
        assert served.status("/", Authorization=f"Bearer {TOKEN}",
                             Host=f"rebound.example:{served.port}") == 403  # fmt: skip
        assert served.status("/", Authorization=f"Bearer {TOKEN}",
                             Host=f"localhost:{served.port}") == 200  # fmt: skip
        # An oversized header with the token in the request line: aiohttp's error log
        # printed a traceback whose locals held the whole request line.
        big = (f"GET /?token={TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
               f"X-Big: {'a' * 20000}\r\nConnection: close\r\n\r\n").encode()  # fmt: skip
        assert b" 400 " in _raw_request(served.port, big).split(b"\r\n")[0]  # refused, logged
    finally:
        served.stop()
    assert TOKEN not in served.said and "Traceback" not in served.said


async def _open_session(served: Served, width: int, height: int, **headers: str):
    import aiohttp

    session = aiohttp.ClientSession()
    socket_ = await session.ws_connect(
        f"ws://127.0.0.1:{served.port}/ws?width={width}&height={height}",
        headers={"Authorization": f"Bearer {TOKEN}", **headers},
    )
    return session, socket_


def _children(pid: int) -> list[int]:
    """Every process descended from `pid`."""
    parents: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(proc.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _running(pid: int) -> bool:
    """Whether `pid` is a process still running: one that has ended but is not reaped yet
    (a zombie, state Z) is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(
        item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item
    )


def test_huge_sizes_are_clamped_garbage_is_one_line_and_a_closed_session_ends(settings, group):
    import asyncio

    served = Served(settings, group)
    try:

        async def visit() -> list[int]:
            client, ws = await _open_session(served, 20000, 20000)
            deadline = time.monotonic() + 20
            # A session's environment has ROWS; a child caught between fork and exec
            # still shows the server's own (COLUMNS=80 from the test runner, say).
            while not any(_environ(p).get("ROWS") for p in _children(served.process.pid)):
                assert time.monotonic() < deadline, "no session process"
                await asyncio.sleep(0.1)
            sizes = {(_environ(p).get("COLUMNS"), _environ(p).get("ROWS"))
                     for p in _children(served.process.pid) if _environ(p).get("ROWS")}  # fmt: skip
            assert sizes == {("500", "200")}
            for garbage in ("not json", '["resize", {}]', "[1, 2]", '{"a": 1}', "[]",
                            '["resize", {"width": "x", "height": 1e400}]'):  # fmt: skip
                await ws.send_str(garbage)
            await ws.send_bytes(b"\x00\xff")
            await ws.send_str('["resize", {"width": 20000, "height": 20000}]')
            await ws.send_str('["ping", "still-there"]')
            while True:  # the session still answers
                message = await ws.receive(timeout=20)
                if message.type.name == "TEXT" and "still-there" in message.data:
                    break
            pids = _children(served.process.pid)
            await ws.close()
            await client.close()
            return pids

        session_pids = asyncio.run(visit())
        assert session_pids
        deadline = time.monotonic() + 10  # the quit, then SIGTERM, then SIGKILL at most
        while any(_running(p) for p in session_pids):
            assert time.monotonic() < deadline, "the session outlived its websocket"
            time.sleep(0.1)
    finally:
        served.stop()
    malformed = [line for line in served.said.splitlines() if "malformed" in line]
    assert len(malformed) == 1 and "Traceback" not in served.said


def test_sessions_are_capped_with_a_page_that_says_so(settings, group):
    import asyncio

    served = Served(settings, group, "--max-sessions", "1")
    try:
        assert "at most 1 sessions" in served.first_lines

        async def two() -> tuple[int, str]:
            import aiohttp

            client, first = await _open_session(served, 80, 24)
            await first.receive(timeout=20)  # the session is up
            try:
                await client.ws_connect(f"ws://127.0.0.1:{served.port}/ws",
                                        headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
            except aiohttp.WSServerHandshakeError as refused:
                status = refused.status
            page = await client.get(f"http://127.0.0.1:{served.port}/",
                                    headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
            text = f"{page.status} {await page.text()}"
            await first.close()
            await client.close()
            return status, text

        status, page = asyncio.run(two())
        assert status == 503
        assert page.startswith("503 orders-tui: 1 sessions are open, the most this server allows")
    finally:
        served.stop()


def test_a_killed_server_leaves_no_properties_file(settings, group, tmp_path):
    served = Served(settings, group, TMPDIR=str(tmp_path))
    assert list(tmp_path.iterdir()) == []  # unlinked at once, read through /proc
    served.process.kill()
    served.process.wait(10)
    assert list(tmp_path.iterdir()) == []
