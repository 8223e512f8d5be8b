"""Runs of one user that overlap: `sync-assets sync` processes, the new-user sensor's run and
backfills through a real Dagster daemon, all on one instance (the repository's dagster.yaml:
the run queue, one run per `sync_assets/user` tag) and one PostgreSQL database.

First two runs two seconds apart (the sensor's first sync and a CLI sync), then eight (five
CLI syncs and three backfills, started a second apart). Every run must finish successfully,
every activity be stored once, no session fail, and the runs must take turns: the queue never
starts two of the user's daemon runs at once, the CLI runs (outside the queue) never run
beside each other, and no two runs work at the same time (their sessions, from the first
step's start to the store's end, never overlap).
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from dagster import DagsterRunStatus
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.storage.tags import BACKFILL_ID_TAG, SENSOR_NAME_TAG
from sync_assets_sandbox import SandboxServer, StravaSandbox

from sync_assets.user_runs import USER_TAG

from .helpers import CLI, add_users, cli_connect, sandbox_env
from .helpers.daemon import REPO, add_backfill, instance_at
from .helpers.daemon import dagster_home as make_dagster_home

N_ACTIVITIES = 300
DAGSTER = Path(sys.executable).with_name("dagster")
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def world(tmp_path: Path, pg_url: str) -> Iterator[dict]:
    sandbox = StravaSandbox(seed=20261203)
    with SandboxServer(sandbox) as server:
        sandbox.set_faults(latency_seconds=0.05)
        athlete = sandbox.add_athlete(n_activities=N_ACTIVITIES, years=1.0)
        dagster_home = make_dagster_home(tmp_path)
        env = sandbox_env(
            sandbox,
            server,
            tmp_path / "home",
            DATABASE_URL=pg_url,
            SYNC_ASSETS_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
            DAGSTER_HOME=str(dagster_home),
        )
        user = str(uuid.uuid4())
        add_users(pg_url, user)
        cli_connect(env, user, athlete.refresh_token)  # also the user's partition
        instance = instance_at(dagster_home)
        activities = sandbox.activities(athlete.athlete_id)
        daemon = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            yield {
                "env": env,
                "user": user,
                "instance": instance,
                "first": activities[0]["start_date"][:7],
                "months": sorted({a["start_date"][:7] for a in activities}),
                "truth": sorted(a["id"] for a in activities),
                "daemon": daemon,
            }
        finally:
            daemon.terminate()
            daemon.communicate(timeout=120)
            instance.dispose()


def cli_sync(world: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [CLI, "sync", "--user", world["user"], "--from", world["first"]],
        env=world["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def backfill(world: dict) -> str:
    """A backfill of the user's months, as the UI launches one (the daemon makes its run)."""
    keys = [f"{m}-01|{world['user']}" for m in world["months"]]
    return add_backfill(world["instance"], keys, "overlap")


def settle(world: dict, clis: list[subprocess.Popen], backfills: list[str], runs: int) -> None:
    """Wait for the CLI processes, the backfills and `runs` runs in all to finish."""
    instance, deadline = world["instance"], time.time() + 600
    for proc in clis:
        out, err = proc.communicate(timeout=max(deadline - time.time(), 1))
        assert proc.returncode == 0, out + err[-3000:]
    while time.time() < deadline:
        records = instance.get_run_records()
        done = all(r.dagster_run.status in FINISHED for r in records)
        filed = all(
            instance.get_backfill(b).status != BulkActionStatus.REQUESTED for b in backfills
        )
        if len(records) >= runs and done and filed:
            break
        assert world["daemon"].poll() is None, world["daemon"].stderr.read().decode()[-3000:]
        time.sleep(1)
    for b in backfills:
        assert instance.get_backfill(b).status == BulkActionStatus.COMPLETED_SUCCESS


def _from_daemon(tags: dict[str, str]) -> bool:
    return BACKFILL_ID_TAG in tags or SENSOR_NAME_TAG in tags


def overlaps(windows: list[tuple[float, float]]) -> int:
    ordered = sorted(windows)
    return sum(1 for a, b in zip(ordered, ordered[1:], strict=False) if b[0] < a[1])


def check(world: dict, pg_url: str, runs: int) -> dict[str, int]:
    instance, user, truth = world["instance"], world["user"], world["truth"]
    records = instance.get_run_records()
    assert len(records) == runs
    for r in records:
        assert r.dagster_run.status == DagsterRunStatus.SUCCESS, r.dagster_run.run_id
        assert r.dagster_run.tags.get(USER_TAG) == user  # every run is the user's, tagged
    # The queue's runs came from the sensor or a backfill (every run's first step tags its
    # process, so the process tags do not tell them from the CLI's).
    queued = [(r.start_time, r.end_time) for r in records if _from_daemon(r.dagster_run.tags)]
    local = [(r.start_time, r.end_time) for r in records if not _from_daemon(r.dagster_run.tags)]
    with psycopg.connect(pg_url) as conn:
        count, distinct = conn.execute(
            "select count(*), count(distinct strava_id) from runs where user_id = %s", (user,)
        ).fetchone()
        ids = [
            r[0]
            for r in conn.execute(
                "select strava_id from runs where user_id = %s order by strava_id", (user,)
            )
        ]
        sessions = conn.execute(
            "select status, extract(epoch from started_at), extract(epoch from completed_at) "
            "from sync_sessions where user_id = %s",
            (user,),
        ).fetchall()
    assert (count, distinct) == (len(truth), len(truth))
    assert ids == truth
    assert len(sessions) == runs
    assert {s[0] for s in sessions} == {"completed"}  # no error anywhere
    work = [(float(s[1]), float(s[2])) for s in sessions]
    assert overlaps(queued) == 0  # the run queue: one run of the user at a time
    assert overlaps(local) == 0  # the CLI processes: one at a time
    assert overlaps(work) == 0  # nobody works beside another run of the user
    return {
        "cli": len(local),
        "daemon": len(queued),
        # A queue run started while a CLI run was starting waits in its first step: its
        # Dagster window overlaps, its work does not.
        "run_windows_overlapping": overlaps(local + queued),
    }


def test_overlapping_runs_of_one_user_take_turns(world, pg_url: str) -> None:
    env = world["env"]
    started = time.perf_counter()
    # Two: the new-user sensor's whole-history run (the daemon) and a CLI sync 2 s later.
    out = subprocess.run(
        [DAGSTER, "sensor", "start", "new_strava_users", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    deadline = time.time() + 120
    while not world["instance"].get_run_records() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    settle(world, [cli_sync(world)], [], runs=2)
    two = check(world, pg_url, runs=2)
    first = time.perf_counter() - started

    # Eight: five CLI syncs and three backfills, a second apart.
    clis, backfills = [], []
    for i in range(8):
        if i in (1, 4, 6):
            backfills.append(backfill(world))
        else:
            clis.append(cli_sync(world))
        time.sleep(1)
    settle(world, clis, backfills, runs=10)
    ten = check(world, pg_url, runs=10)
    print(
        f"\ntwo runs: {two} in {first:.1f} s; eight more: {ten} in "
        f"{time.perf_counter() - started - first:.1f} s; {len(world['truth'])} activities once"
    )
