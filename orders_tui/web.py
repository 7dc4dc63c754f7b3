"""`orders-tui serve`: the fleet's dashboard in a browser, through textual-serve.

Each browser visit starts its own `orders-tui watch` process: an observer, which never
joins the consumer group, so ten open tabs move no partition and process no order. It is
read-only unless `--allow-actions`. With a token, every request (the page, its websocket,
its static files) must carry it: `/?token=...` (then kept in an HttpOnly cookie for the
page's own requests) or `Authorization: Bearer ...`, compared in constant time.

The Kafka client properties (`-F`, `-X`: credentials among them) reach the sessions in a
file only this user may read, never on a command line another user's `ps` shows; the
browser gets the screen, never the properties.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import shlex
import signal
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable

from aiohttp import web
from textual_serve.server import Server

from orders_tui.errors import CannotServe
from orders_tui.kafka.config import REGISTRY_PREFIX, KafkaSettings

TOKEN_COOKIE = "orders_tui_token"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def write_properties(settings: KafkaSettings) -> str:
    """The client properties in a file of this user's alone (0600); its path."""
    properties = dict(settings.properties)
    if settings.registry is not None:  # its URL may hold user:password@ too
        properties[f"{REGISTRY_PREFIX}url"] = settings.registry.url
        properties.update(
            (REGISTRY_PREFIX + key, value) for key, value in settings.registry.properties.items()
        )
    descriptor, path = tempfile.mkstemp(prefix="orders-tui-serve-", suffix=".properties")
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.writelines(f"{key}={value}\n" for key, value in properties.items())
    return path


def session_command(settings: KafkaSettings, watch_flags: list[str], properties_file: str,
                    allow_actions: bool) -> str:  # fmt: skip
    """The shell command a visit runs: `orders-tui watch`, its properties from the file."""
    argv = [sys.executable, "-m", "orders_tui", "watch", "-b", settings.bootstrap_servers,
            "--topic", settings.topic, "--dlq-topic", settings.dlq_topic, *watch_flags,
            "-F", properties_file, *([] if allow_actions else ["--read-only"])]  # fmt: skip
    if settings.registry is not None and settings.registry.subject:
        argv += ["--schema-subject", settings.registry.subject]
    return shlex.join(argv)


def token_given(request: web.Request) -> str | None:
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        return authorization.removeprefix("Bearer ").strip()
    return request.query.get("token") or request.cookies.get(TOKEN_COOKIE)


def require_token(token: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    expected = token.encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = token_given(request)
        if given is None or not hmac.compare_digest(given.encode(), expected):
            raise web.HTTPUnauthorized(
                text="orders-tui: this dashboard needs its token: open /?token=... or send "
                "Authorization: Bearer ...\n",
                headers={"WWW-Authenticate": "Bearer"},
            )
        response = await handler(request)
        if request.query.get("token"):  # the page's websocket and files carry the cookie
            response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="Strict")
        return response

    return check


class DashboardServer(Server):
    def __init__(self, command: str, host: str, port: int, token: str | None,
                 public_url: str | None) -> None:  # fmt: skip
        super().__init__(command, host=host, port=port, title="orders-tui",
                         public_url=public_url)  # fmt: skip
        self.token = token
        self._tasks: set[asyncio.Task] = set()

    def initialize_logging(self) -> None:
        super().initialize_logging()
        # aiohttp's access log would print each request line, a ?token= among them.
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        # Kept, so a stop can close them: aiohttp would otherwise wait for each browser
        # to hang up (20 s and more) before it ends the sessions.
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            return await super().handle_websocket(request)
        finally:
            self._tasks.discard(task)

    async def on_shutdown(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()  # its session process is stopped as the handler unwinds

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        if self.token:
            app.middlewares.append(require_token(self.token))
        return app

    async def on_startup(self, app: web.Application) -> None:
        """Nothing: textual-serve's banner would print the command line (no secret in it,
        but no one's business either), and before the port listens."""

    def serve(self, debug: bool = False) -> None:
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        loop.add_signal_handler(signal.SIGINT, self.request_exit)
        loop.add_signal_handler(signal.SIGTERM, self.request_exit)
        # aiohttp calls `print` once every socket listens: the line says it can be opened.
        try:
            web.run_app(self._make_app(), host=self.host, port=self.port, handle_signals=False,
                        loop=loop, print=lambda _banner: self._announce())  # fmt: skip
        except OSError as exc:  # taken, or an address this machine does not have
            raise CannotServe(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}; choose "
                "another --port (or --host)"
            ) from None

    def _announce(self) -> None:
        access = "a token" if self.token else "no token"
        read_only = "" if "--read-only" not in self.command else ", read-only"
        print(f"orders-tui: serving the dashboard on {self.public_url} ({access}{read_only}); "
              "Ctrl+C stops", file=sys.stderr, flush=True)  # fmt: skip


def public_url(host: str, port: int) -> str:
    """What the browser connects back to: a wildcard address is no place to connect to."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    return f"http://{host}:{port}"


def serve(settings: KafkaSettings, watch_flags: list[str], host: str, port: int,
          allow_actions: bool, token: str | None, url: str | None) -> None:  # fmt: skip
    if host not in LOCAL_HOSTS:
        print(f"orders-tui: warning: listening on {host}: anyone who can reach port {port} "
              f"can see the data{'' if token else ' (no --auth-token)'}", file=sys.stderr,
              flush=True)  # fmt: skip
    properties_file = write_properties(settings)
    try:
        command = session_command(settings, watch_flags, properties_file, allow_actions)
        DashboardServer(command, host, port, token, url or public_url(host, port)).serve()
    finally:
        os.unlink(properties_file)
