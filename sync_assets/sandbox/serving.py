"""The sandbox's HTTP server: the standard library's threading server, bound to loopback.

A plain socket-level server (rather than an ASGI framework) is what lets faults be real: a
dropped connection closes the socket without an answer, a truncated body stops mid-stream.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sync_assets.sandbox.strava_api import StravaSandbox

log = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""
    server: _Server

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header follows the sandbox clock: clients align windows and expiry on it.
        return formatdate(
            self.server.sandbox.now() if timestamp is None else timestamp, usegmt=True
        )

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("sandbox %s", format % args)  # request lines carry no secrets (POST bodies)

    def _dispatch(self) -> None:
        sandbox = self.server.sandbox
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not path.startswith("/_sandbox/"):
            delay = sandbox.latency()
            if delay:
                time.sleep(delay)
        headers = {k.lower(): v for k, v in self.headers.items()}
        resp = sandbox.handle(self.command, path, query, headers, body)
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
            self.send_header("Connection", "close")
            self.close_connection = True
            self.end_headers()
            self.wfile.write(resp.body[: len(resp.body) // 2])
            self.wfile.flush()
            return
        self.end_headers()
        self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: StravaSandbox) -> None:
        self.sandbox = sandbox
        self.open_sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        with self._sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class SandboxServer:
    """Serves a `StravaSandbox` on loopback in a background thread (a context manager)."""

    def __init__(self, sandbox: StravaSandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SandboxServer:
        self._server = _Server(self._address, self.sandbox)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name="strava-sandbox",
            kwargs={"poll_interval": 0.1},
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_all()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=10)
        self._server = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "the sandbox server is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v3"

    @property
    def oauth_url(self) -> str:
        return f"{self.url}/oauth/token"


def serve(
    host: str,
    port: int,
    *,
    seed: int,
    athletes: int,
    sizes: list[int] | None = None,
    client_id: str = "sandbox-client",
    client_secret: str = "sandbox-secret",
) -> None:
    """Run the sandbox in the foreground until interrupted, printing how to use it."""
    sandbox = StravaSandbox(client_id=client_id, client_secret=client_secret, seed=seed)
    sizes = sizes or [300 + 900 * i for i in range(athletes)]
    handles = [
        sandbox.add_athlete(n_activities=sizes[i % len(sizes)], seed=seed + i)
        for i in range(max(athletes, len(sizes) if sizes else 0))
    ]
    with SandboxServer(sandbox, host, port) as server:
        print(f"Strava sandbox on {server.url}  (Ctrl-C stops it)")
        print(f"  export STRAVA_API_URL={server.api_url}")
        print(f"  export STRAVA_OAUTH_URL={server.oauth_url}")
        print(f"  export STRAVA_CLIENT_ID={client_id} STRAVA_CLIENT_SECRET={client_secret}")
        for h in handles:
            n = len(sandbox.activities(h.athlete_id))
            print(
                f"  athlete {h.athlete_id}: {n} activities; refresh token {h.refresh_token}; "
                f"authorization code {h.authorization_code}"
            )
        print(
            f"  control API: {server.url}/_sandbox/ (athletes, faults, limits, clock, usage)",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
