"""A real PgBouncer in transaction mode in front of the test PostgreSQL: the rules of
Supabase's pooler (port 6543) on a port of its own (never 6543: nothing may guess the pooler
from the URL).

Each `PgBouncer` is a process of its own, started on a free loopback port with its config in
a private folder and its log there; it is stopped when the block ends. Everything else is
PgBouncer's default (pool sizes, timeouts, no prepared statement support in Debian 12's 1.18)
unless a test asks for more (`settings`), e.g. a one-connection server pool, where every
client's transactions share one server connection.

PgBouncer refuses to start as root ("PgBouncer should not run as root"), and the tests run as
root in CI: it is then started with `-u postgres` (or `nobody`), switching user after reading
its config; it logs to the stderr this process captures, so it needs no writable folder."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import conninfo

from ..pg import ADMIN_URL

SUPABASE_POOLER_PORT = 6543
START_SECONDS = 10


def pgbouncer_binary() -> str:
    """PgBouncer's executable (Debian installs it in /usr/sbin, not on a user's PATH)."""
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")
    if not found:
        raise RuntimeError(
            "pgbouncer is not installed: `apt-get install pgbouncer` (scripts/test installs "
            "it where it runs as root with apt-get)"
        )
    return found


def _run_as() -> list[str]:
    """`-u USER` when this process is root (PgBouncer refuses to run as root)."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["-u", user]
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user for PgBouncer")


def _free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != SUPABASE_POOLER_PORT:
            return port


class PgBouncer:
    """PgBouncer (pool_mode=transaction) in front of the server of `tests/pg.py`'s ADMIN_URL.

    `url(database)` is the pooled URL of one of that server's databases (user postgres);
    `show(what)` reads the admin console (`SHOW POOLS`, `SHOW STATS`, `SHOW CONFIG`...)."""

    def __init__(self, settings: dict[str, object] | None = None, user: str = "postgres") -> None:
        self.settings = dict(settings or {})
        self.user = user
        self.port = 0
        self.folder = Path(tempfile.mkdtemp(prefix="sa_pgbouncer_"))
        self.log_path = self.folder / "pgbouncer.log"
        self._process: subprocess.Popen[bytes] | None = None

    def _config(self) -> Path:
        upstream = conninfo.conninfo_to_dict(ADMIN_URL)
        host, port = upstream.get("host") or "127.0.0.1", upstream.get("port") or 5432
        (self.folder / "users.txt").write_text(f'"{self.user}" ""\n')
        lines = [
            "[databases]",
            f"* = host={host} port={port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            "unix_socket_dir =",  # TCP only: no socket file shared with anything else
            "auth_type = trust",
            f"auth_file = {self.folder / 'users.txt'}",
            f"admin_users = {self.user}",
            "pool_mode = transaction",
            *(f"{key} = {value}" for key, value in self.settings.items()),
        ]
        path = self.folder / "pgbouncer.ini"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> PgBouncer:
        for _ in range(3):  # a port taken between choosing and listening: choose again
            self.port = _free_port()
            config = self._config()
            with open(self.log_path, "ab") as log:
                self._process = subprocess.Popen(
                    [pgbouncer_binary(), *_run_as(), str(config)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if self._wait_listening():
                return self
        raise RuntimeError(f"PgBouncer did not start: {self.log()[-2000:]}")

    def _wait_listening(self) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                time.sleep(0.05)
        self.stop()
        return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()  # SIGTERM: PgBouncer closes every connection and exits
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, direct_url: str) -> str:
        """The URL of `direct_url`'s database through this pooler."""
        database = conninfo.conninfo_to_dict(direct_url)["dbname"]
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def show(self, what: str) -> list[dict[str, object]]:
        """`SHOW <what>` on the admin console (simple query protocol only, hence autocommit
        and no parameters), as dicts."""
        url = f"postgresql://{self.user}@127.0.0.1:{self.port}/pgbouncer"
        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(f"SHOW {what}")
            names = [c.name for c in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def admin(self, command: str) -> None:
        """An admin command (`PAUSE db`, `RESUME db`, `DISABLE db`, `ENABLE db`...)."""
        url = f"postgresql://{self.user}@127.0.0.1:{self.port}/pgbouncer"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(command)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
