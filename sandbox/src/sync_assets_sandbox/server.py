"""The sandbox over HTTP: the standard library's threading server, on loopback by default.

A socket-level server (not an ASGI framework) is what makes the network faults real: a dropped
connection is a socket closed without an answer, a truncated body stops mid-stream after a
full Content-Length. HTTP/1.1 with keep-alive, as Strava's front ends speak it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import sys
import threading
from collections.abc import Callable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, TextIO

from sync_assets_sandbox.strava import (
    DEFAULT_LIST_ORDER,
    Faults,
    RateLimits,
    Response,
    StravaSandbox,
)
from sync_assets_sandbox.weather import WeatherSandbox

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 10 * 1024 * 1024
IDLE_TIMEOUT_SECONDS = 60.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""
    timeout = IDLE_TIMEOUT_SECONDS  # idle keep-alive connections are closed after this
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms stalls
    server: _Server

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header follows the sandbox clock: clients align windows and expiry on it.
        when = self.server.sandbox.now() if timestamp is None else timestamp
        return formatdate(when, usegmt=True)

    # The stdlib logs the request line, whose query may hold a code or a token: log the path.
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.partition("?")[0] if hasattr(self, "path") else "?"
        log.debug("%s %s -> %s", getattr(self, "command", "?"), path, code)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        code = args[0] if args and isinstance(args[0], int) else "?"
        log.debug("sandbox: could not serve a request (%s)", code)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # everything worth logging goes through log_request and log_error above

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked); None after answering an error."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
                try:
                    size = int(size_line, 16)
                except ValueError:
                    self.send_error(400, "bad chunked body")
                    return None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    self.send_error(413)
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.send_error(400 if length < 0 else 413)
            return None
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            self.close_connection = True
            return
        path, _, query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        resp = self.server.sandbox.handle(self.command, path, query, headers, body)
        if resp.delay > 0 and self.server.stopping.wait(resp.delay):
            self.close_connection = True  # shutting down: do not hold the server up
            return
        while resp.held is not None and resp.held():
            if self.server.stopping.wait(0.05):
                self.close_connection = True
                return
        try:
            self._send(resp)
        except OSError:  # the client went away: nothing to tell it
            self.close_connection = True

    def _send(self, resp: Response) -> None:
        if resp.action == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(resp.status)
        for name, value in resp.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        if resp.action == "truncate":
            self.close_connection = True
            self.end_headers()
            self.wfile.write(resp.body[: len(resp.body) // 2])
            self.wfile.flush()
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


class SandboxApp(Protocol):
    def now(self) -> float: ...
    def handle(
        self, method: str, path: str, query_string: str, headers: dict[str, str], body: bytes
    ) -> Response: ...


WEATHER_PREFIXES = ("/v1/archive", "/data/3.0/", "/_weather")


class SandboxRouter:
    """One HTTP server for both sandboxes: Open-Meteo's and OpenWeatherMap's paths (and the
    weather control API) go to the weather sandbox, everything else to Strava's."""

    def __init__(self, strava: StravaSandbox, weather: WeatherSandbox) -> None:
        self.strava = strava
        self.weather = weather

    def now(self) -> float:
        return self.strava.now()

    def handle(
        self, method: str, path: str, query_string: str, headers: dict[str, str], body: bytes
    ) -> Response:
        app: SandboxApp = self.weather if path.startswith(WEATHER_PREFIXES) else self.strava
        return app.handle(method, path, query_string, headers, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self, address: tuple[str, int], sandbox: SandboxApp, family: socket.AddressFamily
    ) -> None:
        self.address_family = family
        self.sandbox = sandbox
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections so they exit now."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SandboxServer:
    """Serves a `StravaSandbox` (and a `WeatherSandbox`, by default one sharing its clock) in
    a background thread; a context manager."""

    def __init__(
        self,
        sandbox: StravaSandbox,
        host: str = "127.0.0.1",
        port: int = 0,
        weather: WeatherSandbox | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.weather = weather or WeatherSandbox(seed=sandbox.seed, clock=sandbox.now)
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SandboxServer:
        if self._server is not None:
            return self
        if not _is_loopback(self.host):
            log.warning("the Strava sandbox listens on %s, beyond this machine", self.host)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        app = SandboxRouter(self.sandbox, self.weather)
        self._server = _Server((self.host, self.port), app, family)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"strava-sandbox:{self._server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection, keep-alive ones included."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox server is not running")
        host, port = self._server.server_address[:2]
        host = str(host)
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v3"

    @property
    def oauth_url(self) -> str:
        return f"{self.url}/oauth/token"

    @property
    def weather_url(self) -> str:
        """Open-Meteo's archive endpoint (`WEATHER_API_URL`)."""
        return f"{self.url}/v1/archive"

    @property
    def openweathermap_url(self) -> str:
        """OpenWeatherMap's One Call 3.0 timemachine endpoint."""
        return f"{self.url}/data/3.0/onecall/timemachine"


def default_sizes(athletes: int) -> list[int]:
    """Histories of different lengths, so one run shows small and large syncs."""
    return [300 + 900 * i for i in range(athletes)]


def serve(
    host: str,
    port: int,
    *,
    seed: int,
    athletes: int,
    sizes: list[int] | None = None,
    client_id: str = "sandbox-client",
    client_secret: str = "sandbox-secret",
    scopes: str = "read,activity:read_all",
    token_lifetime_seconds: int = 21_600,
    rotate_refresh_tokens: bool = True,
    limits: RateLimits | None = None,
    faults: Faults | None = None,
    list_order: str = DEFAULT_LIST_ORDER,
    out: TextIO | None = None,
    stop: threading.Event | None = None,
    on_ready: Callable[[SandboxServer], None] | None = None,
) -> None:
    """Serve a sandbox in the foreground until Ctrl-C (or `stop` is set), printing its URLs.

    There are max(athletes, len(sizes)) athletes; sizes repeat when fewer than athletes.
    The credentials printed are sandbox credentials: they open nothing but the sandbox.
    """
    out = out or sys.stdout
    sandbox = StravaSandbox(
        client_id=client_id,
        client_secret=client_secret,
        seed=seed,
        token_lifetime_seconds=token_lifetime_seconds,
        rotate_refresh_tokens=rotate_refresh_tokens,
        limits=limits,
        list_order=list_order,
    )
    sizes = sizes or default_sizes(athletes)
    handles = [
        sandbox.add_athlete(sizes[i % len(sizes)], scopes=scopes)
        for i in range(max(athletes, len(sizes)))
    ]
    if faults is not None:
        sandbox.set_faults(**{k: v for k, v in vars(faults).items() if v != getattr(Faults(), k)})
    with SandboxServer(sandbox, host, port) as server:
        print(f"Strava sandbox on {server.url}  (Ctrl-C stops it)", file=out)
        print(f"  STRAVA_API_URL={server.api_url}", file=out)
        print(f"  STRAVA_OAUTH_URL={server.oauth_url}", file=out)
        print(f"  STRAVA_CLIENT_ID={client_id}", file=out)
        print(f"  STRAVA_CLIENT_SECRET={client_secret}", file=out)
        print(f"  WEATHER_API_URL={server.weather_url}  (Open-Meteo archive)", file=out)
        print(f"  OpenWeatherMap timemachine: {server.openweathermap_url}", file=out)
        for h in handles:
            n = len(sandbox.activities(h.athlete_id))
            print(
                f"  athlete {h.athlete_id}: {n} activities, scopes {h.scopes}\n"
                f"    refresh token {h.refresh_token}\n"
                f"    authorization code {h.authorization_code}",
                file=out,
            )
        print(f"  activity lists: {sandbox.list_order}", file=out)
        print(
            f"  control API: {server.url}/_sandbox/ (athletes, faults, limits, settings,", file=out
        )
        print("    clock, usage, requests, mutations)", file=out)
        print(
            f"  weather control API: {server.url}/_weather/ (faults, limits, usage, clock,",
            file=out,
        )
        print("    requests)", file=out, flush=True)
        if on_ready is not None:
            on_ready(server)
        waiter = stop or threading.Event()
        try:
            while not waiter.wait(0.5):
                pass
        except KeyboardInterrupt:
            print("Strava sandbox stopped", file=out, flush=True)
