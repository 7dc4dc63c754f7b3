"""`orders-tui serve`: the fleet's dashboard in a browser, through textual-serve.

Each browser visit starts its own `orders-tui watch` process: an observer, which never
joins the consumer group, so ten open tabs move no partition and process no order. It is
read-only unless `--allow-actions`. With a token, every request (the page, its websocket,
its static files) must carry it: `/?token=...` (then kept in an HttpOnly cookie for the
page's own requests) or `Authorization: Bearer ...`, compared in constant time.

The Kafka client properties (`-F`, `-X`: credentials among them) reach the sessions in a
file only this user may read, unlinked as soon as it is written: the sessions read it
through this process's open descriptor (`/proc/<pid>/fd/<n>`), so it is gone with the
process, even after a SIGKILL. Never on a command line another user's `ps` shows; the
browser gets the screen, never the properties.

A page on another origin could open the websocket, and through a DNS rebinding a foreign
name could reach the server as if it were local: the websocket's `Origin` must be this
server's, and every request's `Host` one of this server's names, else 403. Sessions are
capped (`--max-sessions`), and each is guarded as web_session.py says.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
import shlex
import signal
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web
from textual_serve.server import Server

from orders_tui.errors import CannotServe
from orders_tui.kafka.config import REGISTRY_PREFIX, KafkaSettings
from orders_tui.visible import visible
from orders_tui.web_session import Session, clamp_size, parse_message

TOKEN_COOKIE = "orders_tui_token"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
DEFAULT_MAX_SESSIONS = 10
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger("orders-tui.serve")


class PropertiesFile:
    """The client properties in a file of this user's alone (0600). Where /proc shows
    open descriptors, the file is unlinked at once and `path` names this process's
    descriptor of it: nothing is left on disk, whatever ends the process."""

    def __init__(self, settings: KafkaSettings) -> None:
        descriptor, name = tempfile.mkstemp(prefix="orders-tui-serve-", suffix=".properties")
        with os.fdopen(os.dup(descriptor), "w", encoding="utf-8") as out:
            out.writelines(f"{key}={value}\n" for key, value in _properties(settings).items())
        self._descriptor = descriptor
        self._name: str | None = name
        self.path = name
        by_descriptor = Path(f"/proc/{os.getpid()}/fd/{descriptor}")
        if by_descriptor.exists():
            os.unlink(name)
            self._name, self.path = None, str(by_descriptor)

    def close(self) -> None:
        os.close(self._descriptor)
        if self._name is not None:
            os.unlink(self._name)


def _properties(settings: KafkaSettings) -> dict[str, str]:
    properties = dict(settings.properties)
    if settings.registry is not None:  # its URL may hold user:password@ too
        properties[f"{REGISTRY_PREFIX}url"] = settings.registry.url
        properties.update(
            (REGISTRY_PREFIX + key, value) for key, value in settings.registry.properties.items()
        )
    return properties


def session_command(
    settings: KafkaSettings, watch_flags: list[str], properties_file: str, allow_actions: bool
) -> str:
    """The shell command a visit runs: `orders-tui watch`, its properties from the file."""
    argv = [
        sys.executable,
        "-m",
        "orders_tui",
        "watch",
        "-b",
        settings.bootstrap_servers,
        "--topic",
        settings.topic,
        "--dlq-topic",
        settings.dlq_topic,
        *watch_flags,
        "-F",
        properties_file,
        *([] if allow_actions else ["--read-only"]),
    ]
    if settings.registry is not None and settings.registry.subject:
        argv += ["--schema-subject", settings.registry.subject]
    return shlex.join(argv)


def token_given(request: web.Request) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":  # the scheme is case-insensitive (RFC 7235)
        return credentials.strip()
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


class OneLineNoSecrets(logging.Formatter):
    """Every log record as one line with control characters shown, an exception as its
    type and message (textual-serve's handler printed tracebacks with their locals, a
    request line with ?token= among them), and the token never in it."""

    def __init__(self, token: str | None) -> None:
        super().__init__("orders-tui: serve: %(message)s")
        self.token = token

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message += f" ({type(error).__name__}: {error})"
        message = re.sub(r"(token=)[^&\s]*", r"\1***", message, flags=re.IGNORECASE)
        if self.token:
            message = message.replace(self.token, "***")
        return "orders-tui: serve: " + visible(message)


def served_names(host: str, port: int, public: str) -> tuple[set[str], set[str]]:
    """The `Host` values this server answers to, and the `Origin` values its page has:
    the address it listens on (every local name for a loopback or wildcard address) and
    the public URL's."""
    if host in ("0.0.0.0", "::", ""):
        names = {socket.getfqdn(), socket.gethostname(), *LOCAL_HOSTS}
    elif host in LOCAL_HOSTS:
        names = set(LOCAL_HOSTS)
    else:
        names = {host}
    hosts = {f"[{n}]:{port}" if ":" in n else f"{n}:{port}" for n in names}
    origins = {f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")}
    url = urlsplit(public)
    hosts.add(url.netloc)
    origins.add(f"{url.scheme}://{url.netloc}")
    return {h.lower() for h in hosts}, {o.lower() for o in origins}


class DashboardServer(Server):
    def __init__(
        self,
        command: str,
        host: str,
        port: int,
        token: str | None,
        public_url: str,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
    ) -> None:
        super().__init__(command, host=host, port=port, title="orders-tui", public_url=public_url)
        self.token = token
        self.max_sessions = max_sessions
        self.hosts, self.origins = served_names(host, port, public_url)
        self.sessions = 0  # open, or being opened
        self._tasks: set[asyncio.Task] = set()

    def initialize_logging(self) -> None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(OneLineNoSecrets(self.token))
        logging.basicConfig(level="INFO", handlers=[handler], force=True)
        # aiohttp's access log would print each request line, a ?token= among them.
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    def _full(self) -> web.HTTPServiceUnavailable:
        return web.HTTPServiceUnavailable(
            text=f"orders-tui: {self.sessions} sessions are open, the most this server allows "
            "(--max-sessions): close a tab of it, or try again later\n"
        )

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        if self.sessions >= self.max_sessions:
            raise self._full()
        return await super().handle_index(request)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        if self.sessions >= self.max_sessions:
            raise self._full()
        self.sessions += 1
        # Kept, so a stop can close them: aiohttp would otherwise wait for each browser
        # to hang up (20 s and more) before it ends the sessions.
        task = asyncio.current_task()
        self._tasks.add(task)
        websocket = web.WebSocketResponse(heartbeat=15)
        width, height = clamp_size(
            request.query.get("width", 80), request.query.get("height", 24)
        ) or (80, 24)
        session: Session | None = None
        try:
            await websocket.prepare(request)
            session = Session(
                self.command,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=websocket.close,
                download_manager=self.download_manager,
                debug=self.debug,
            )
            await session.start(width, height)
            await self._relay(websocket, session, request.remote or "?")
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:  # a session's failure is its own, never the server's
            log.warning("a session ended on an error (%s: %s)", type(error).__name__, error)
        finally:
            if session is not None:
                await session.stop()
            self.sessions -= 1
            self._tasks.discard(task)
        return websocket

    async def _relay(self, websocket: web.WebSocketResponse, session: Session, peer: str) -> None:
        """What the page sends, to the session: only the messages a page of ours sends."""
        warned = False
        async for message in websocket:
            parsed = parse_message(message.data) if message.type == WSMsgType.TEXT else None
            if parsed is None:
                if not warned:  # one line a session, however many it sends
                    log.warning(
                        "ignored a malformed websocket message from %s (and any "
                        "more from this session)",
                        peer,
                    )
                    warned = True
                continue
            kind, data = parsed
            if kind == "stdin":
                await session.send_bytes(data.encode("utf-8"))
            elif kind == "resize":
                await session.set_terminal_size(*clamp_size(data["width"], data["height"]))
            elif kind == "ping":
                await websocket.send_json(["pong", data])
            elif kind == "blur":
                await session.blur()
            else:
                await session.focus()

    async def on_shutdown(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()  # its session process is stopped as the handler unwinds

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._only_ours)
        if self.token:
            app.middlewares.append(require_token(self.token))
        return app

    @web.middleware
    async def _only_ours(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """403 for a request to a name that is not this server's (DNS rebinding), and for
        a websocket opened by a page of another origin."""
        if request.host.lower() not in self.hosts:
            raise web.HTTPForbidden(
                text="orders-tui: this server does not answer to that host name; if browsers "
                "reach it by another name, give it with --public-url\n"
            )
        origin = request.headers.get("Origin")
        if request.path == "/ws" and origin is not None and origin.lower() not in self.origins:
            raise web.HTTPForbidden(
                text="orders-tui: a page of another origin may not open this dashboard\n"
            )
        return await handler(request)

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
            web.run_app(
                self._make_app(),
                host=self.host,
                port=self.port,
                handle_signals=False,
                loop=loop,
                print=lambda _banner: self._announce(),
            )
        except OSError as exc:  # taken, or an address this machine does not have
            raise CannotServe(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}; choose "
                "another --port (or --host)"
            ) from None

    def _announce(self) -> None:
        access = "a token" if self.token else "no token"
        read_only = "" if "--read-only" not in self.command else ", read-only"
        print(
            f"orders-tui: serving the dashboard on {self.public_url} ({access}{read_only}, "
            f"at most {self.max_sessions} sessions); Ctrl+C stops",
            file=sys.stderr,
            flush=True,
        )


def public_url(host: str, port: int) -> str:
    """What the browser connects back to: a wildcard address is no place to connect to."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    return f"http://{host}:{port}"


def serve(
    settings: KafkaSettings,
    watch_flags: list[str],
    host: str,
    port: int,
    allow_actions: bool,
    token: str | None,
    url: str | None,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
) -> None:
    if host not in LOCAL_HOSTS:
        print(
            f"orders-tui: warning: listening on {host}: anyone who can reach port {port} "
            f"can see the data{'' if token else ' (no --auth-token)'}",
            file=sys.stderr,
            flush=True,
        )
    properties = PropertiesFile(settings)
    try:
        command = session_command(settings, watch_flags, properties.path, allow_actions)
        DashboardServer(
            command, host, port, token, url or public_url(host, port), max_sessions
        ).serve()
    finally:
        properties.close()
