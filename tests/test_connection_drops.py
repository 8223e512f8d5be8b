"""The sync's database drops every connection (`pg_terminate_backend`, as a failover or a
pooler restart does) while `sync-assets sync` fetches, enriches or stores, on PostgreSQL.

A thread on an admin connection watches the user's session and, once it enters the phase,
terminates every other backend of the sync's database four times. Each step retries the unit
of work that lost its connection on a fresh one: the run completes with every activity once.
When the database stays away past the retries (it is cut continuously for longer than the
retry budget), the run fails, its session ends `failed` with the reason, and the next sync
completes with nothing lost.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from sync_assets_sandbox import SandboxServer, StravaSandbox

from .helpers import CLI, add_users, cli_connect, sandbox_env
from .pg import ADMIN_URL

N_ACTIVITIES = 450  # 3 list pages
KILLS_PER_PHASE = 4
RETRY_MARK = "database connection lost in"
LOCK_MARK = "the locks went"  # a cut of the weather lock's open transaction: logged, harmless

pytestmark = pytest.mark.timeout(420)


@dataclass
class Cutter:
    """Terminates every backend of the sync's database but its own, from an admin connection,
    once the user's newest session is in `phase`: `kills` times, at least `every` seconds apart,
    each when another backend is in a statement or a transaction if one is within 2 x `every` (or,
    with `down_for`, keeps the database away that long)."""

    url: str
    user: str
    phase: str
    kills: int = KILLS_PER_PHASE
    every: float = 0.1
    down_for: float | None = None  # instead: the database refuses connections this long
    fired: int = 0
    terminated: int = 0
    seen_phases: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Cutter:
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def _cut(self, conn: psycopg.Connection) -> None:
        n = conn.execute(
            "select count(*) filter (where pg_terminate_backend(pid)) from pg_stat_activity "
            "where datname = current_database() and pid <> pg_backend_pid()"
        ).fetchone()[0]
        self.fired += 1
        self.terminated += n

    @staticmethod
    def _busy(conn: psycopg.Connection) -> bool:
        """Another backend of the database is in a statement or a transaction."""
        return conn.execute(
            "select exists (select 1 from pg_stat_activity where datname = current_database() "
            "and pid <> pg_backend_pid() and state in ('active', 'idle in transaction'))"
        ).fetchone()[0]

    def _down(self, conn: psycopg.Connection) -> None:
        """The database goes away (a failover): new connections refused, every one cut, for
        `down_for` seconds; then it is back."""
        name = conn.info.dbname
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'alter database "{name}" allow_connections false')
            try:
                self._cut(conn)
                self._stop.wait(self.down_for)
            finally:
                admin.execute(f'alter database "{name}" allow_connections true')

    def _watch(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            started = None
            while not self._stop.is_set():
                row = conn.execute(
                    "select status from sync_sessions where user_id = %s "
                    "order by created_at desc limit 1",
                    (self.user,),
                ).fetchone()
                status = row[0] if row else None
                if status and (not self.seen_phases or self.seen_phases[-1] != status):
                    self.seen_phases.append(status)
                if status == self.phase or started is not None:
                    started = started or time.monotonic()
                    if self.down_for is not None:
                        self._down(conn)
                        return
                    if status != self.phase or self.fired >= self.kills:
                        return
                    if self._busy(conn) or time.monotonic() - started > self.every * 2:
                        self._cut(conn)  # mid-transaction if it can: the pool hides idle cuts
                        started = time.monotonic()
                        time.sleep(self.every)
                    time.sleep(0.002)
                    continue
                time.sleep(0.01)


@pytest.fixture
def world(tmp_path: Path, pg_url: str) -> Iterator[tuple]:
    sandbox = StravaSandbox(seed=20261202)
    with SandboxServer(sandbox) as server:
        # Slow enough answers that each phase lasts a while: a cut lands in its middle.
        sandbox.set_faults(latency_seconds=0.3)
        server.weather.set_faults(latency_seconds=0.4)
        athlete = sandbox.add_athlete(n_activities=N_ACTIVITIES, years=2.0)
        env = sandbox_env(
            sandbox,
            server,
            tmp_path / "home",
            DATABASE_URL=pg_url,
            SYNC_ASSETS_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        )
        user = str(uuid.uuid4())
        add_users(pg_url, user)
        cli_connect(env, user, athlete.refresh_token)
        first = sandbox.activities(athlete.athlete_id)[0]["start_date"][:7]
        truth = sorted(a["id"] for a in sandbox.activities(athlete.athlete_id))
        yield env, user, [CLI, "sync", "--user", user, "--from", first], truth


def stored(url: str, user: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select count(*), count(distinct strava_id) from runs where user_id = %s", (user,)
        ).fetchone()


def stored_ids(url: str, user: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select strava_id from runs where user_id = %s order by strava_id", (user,)
        ).fetchall()
    return [r[0] for r in rows]


def sessions(url: str, user: str) -> list[tuple[str, dict | None]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select status, last_error from sync_sessions where user_id = %s order by created_at",
            (user,),
        ).fetchall()


@pytest.mark.parametrize("phase", ["fetching_activities", "enriching_weather", "storing_data"])
def test_connections_dropped_in_a_phase_are_retried_and_the_sync_completes(
    world, pg_url: str, phase: str
) -> None:
    env, user, sync, truth = world
    started = time.perf_counter()
    with Cutter(pg_url, user, phase) as cutter:
        out = subprocess.run(sync, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    retries = out.stderr.count(RETRY_MARK)
    locks = out.stderr.count(LOCK_MARK)
    print(
        f"\n{phase}: {cutter.fired} cuts, {cutter.terminated} backends terminated, "
        f"{retries} units of work retried, {locks} weather locks lost, {seconds:.1f} s; "
        f"phases seen {cutter.seen_phases}"
    )
    assert cutter.fired == KILLS_PER_PHASE, (cutter.seen_phases, out.stderr[-3000:])
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert stored(pg_url, user) == (len(truth), len(truth))
    assert stored_ids(pg_url, user) == truth
    assert [s[0] for s in sessions(pg_url, user)] == ["completed"]


def test_a_database_away_past_the_retries_fails_the_session_and_the_next_sync_completes(
    world, pg_url: str
) -> None:
    env, user, sync, truth = world
    # The database refuses connections for 40 s while the sync enriches; a unit of work waits
    # up to the pool's 30 s for a connection, and may take 2 s in all (a small budget): the
    # weather step fails, and records why once the database is back.
    short = {**env, "SYNC_ASSETS_DB_RETRY_ATTEMPTS": "3", "SYNC_ASSETS_DB_RETRY_SECONDS": "2"}
    started = time.perf_counter()
    with Cutter(pg_url, user, "enriching_weather", down_for=40.0) as cutter:
        out = subprocess.run(sync, env=short, capture_output=True, text=True, timeout=300)
    print(
        f"\ndatabase away for 40 s while enriching: {cutter.terminated} backends terminated, "
        f"{out.stderr.count(RETRY_MARK)} retries, exit {out.returncode} after "
        f"{time.perf_counter() - started:.1f} s"
    )
    assert cutter.fired > 0, (cutter.seen_phases, out.stderr[-3000:])
    assert out.returncode != 0, out.stdout
    ((status, error),) = sessions(pg_url, user)
    print(f"session failed: {error['message']}")
    assert status == "failed", out.stderr[-3000:]
    assert error is not None and "database connection failed" in error["message"], error
    assert error["retryable"] is True

    again = subprocess.run(sync, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert stored(pg_url, user) == (len(truth), len(truth))
    assert stored_ids(pg_url, user) == truth
    assert [s[0] for s in sessions(pg_url, user)] == ["failed", "completed"]
