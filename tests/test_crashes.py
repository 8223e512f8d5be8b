"""Crashes: `sync-assets sync` (the embedded default) is SIGKILLed while it fetches, enriches
or stores; the next `sync-assets sync` fails the dead run and its session, resumes from the
checkpoint (at most one page is fetched again) and leaves exactly Strava's activities."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sync_assets_sandbox import SandboxServer, StravaSandbox

from sync_assets.core.ingest import minimum_list_calls

from .helpers import CLI, LIST_ORDERS, cli_connect, sandbox_env

SEED = int(os.environ.get("SYNC_ASSETS_CAMPAIGN_SEED", "20261129"))
N_ACTIVITIES = 1_500  # 8 list pages
LISTS = "/api/v3/athlete/activities"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def world(tmp_path: Path, list_order: str) -> Iterator[tuple]:
    sandbox = StravaSandbox(seed=SEED, list_order=list_order)
    with SandboxServer(sandbox) as server:
        athlete = sandbox.add_athlete(n_activities=N_ACTIVITIES, years=4.0)
        env = sandbox_env(sandbox, server, tmp_path / "home")  # the embedded default
        user = str(uuid.uuid4())
        cli_connect(env, user, athlete.refresh_token)
        # The months of the athlete's history (not all since 2009): the same listing, a
        # quarter of the partitions to materialize.
        first = sandbox.activities(athlete.athlete_id)[0]["start_date"][:7]
        yield (
            sandbox,
            server,
            env,
            [CLI, "sync", "--user", user, "--from", first],
            (athlete.athlete_id),
        )


def sessions(env: dict[str, str]) -> list[tuple[str, str, str | None]]:
    db = Path(env["SYNC_ASSETS_HOME"]) / "sync_assets.db"
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return conn.execute(
                "SELECT dagster_run_id, status, last_error FROM sync_sessions ORDER BY created_at"
            ).fetchall()
        except sqlite3.OperationalError:
            return []


def stored_ids(env: dict[str, str]) -> list[int]:
    with sqlite3.connect(Path(env["SYNC_ASSETS_HOME"]) / "sync_assets.db") as conn:
        return [r[0] for r in conn.execute("SELECT strava_id FROM runs ORDER BY strava_id")]


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert proc.poll() is None, f"the sync ended before {what}: {proc.stdout.read()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


# A crash while fetching in every listing order; the slower enrich and store crashes in the
# default order and one other each.
@pytest.mark.parametrize(
    ("phase", "list_order"),
    [
        *(("fetch", order) for order in LIST_ORDERS),
        ("enrich", LIST_ORDERS[0]),
        ("enrich", LIST_ORDERS[1]),
        ("store", LIST_ORDERS[0]),
        ("store", LIST_ORDERS[2]),
    ],
)
def test_a_killed_sync_is_failed_and_the_next_one_resumes_from_its_checkpoint(
    world, phase: str, list_order: str, capsys
) -> None:
    sandbox, server, env, sync, athlete_id = world
    rng = random.Random(f"{SEED}:{phase}")
    lists = lambda: sandbox.request_count(kind="api", path_prefix=LISTS)  # noqa: E731
    sandbox.set_faults(latency_seconds=0.2)  # a page every ~0.2 s: room to land in the middle
    if phase == "enrich":
        server.weather.set_faults(latency_seconds=3.0)
    proc = subprocess.Popen(
        sync,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lock: sqlite3.Connection | None = None
    try:
        if phase == "fetch":
            at_page = rng.randint(2, 6)
            wait_for(lambda: lists() >= at_page, proc, f"page {at_page}")
            time.sleep(rng.uniform(0.0, 0.2))  # anywhere inside the next request
        elif phase == "enrich":
            wait_for(lambda: server.weather.request_count() >= 1, proc, "a weather request")
            time.sleep(rng.uniform(0.0, 1.0))
        else:
            wait_for(lambda: any(s[1] == "storing_data" for s in sessions(env)), proc, "storing")
            # Hold the database's write lock: the sync is stuck between two batches.
            lock = sqlite3.connect(Path(env["SYNC_ASSETS_HOME"]) / "sync_assets.db")
            lock.execute("BEGIN IMMEDIATE")
            time.sleep(rng.uniform(0.1, 0.3))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if lock is not None:
            lock.rollback()
            lock.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    killed_lists = lists()
    (killed_run, status, _), *_ = sessions(env)
    assert status in ("fetching_activities", "enriching_weather", "storing_data")
    server.weather.clear_faults()
    sandbox.set_faults(latency_seconds=0.0)

    out = subprocess.run(sync, env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"run {killed_run[:8]} of an earlier command died" in out.stdout

    by_run = {run_id: (status, error) for run_id, status, error in sessions(env)}
    status, error = by_run[killed_run]
    assert status == "failed" and "died (killed or crashed)" in error
    (resumed,) = [s for run_id, s in by_run.items() if run_id != killed_run]
    assert resumed[0] == "completed"
    truth = sorted(a["id"] for a in sandbox.activities(athlete_id))
    assert stored_ids(env) == truth  # every activity, once
    minimum = minimum_list_calls(N_ACTIVITIES)
    again = killed_lists + (lists() - killed_lists) - minimum
    with capsys.disabled():
        print(
            f"\ncrash in {phase} ({list_order}): killed after {killed_lists} list requests; "
            f"the relaunch made {lists() - killed_lists}; {again} page(s) fetched twice; "
            f"{len(truth)} activities checked"
        )
    assert again <= 1, f"{again} pages fetched again"
