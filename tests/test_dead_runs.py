"""A run launched by the daemon whose processes are killed (SIGKILL) ends `failed` (issue 18).

Dagster's run monitoring cannot see a dead run worker under the default launcher (it checks
a worker's health only for launchers that support it). The code server that started the
worker notices its own child's death while it lives; when it dies too (the daemon's whole
process tree killed: a container's OOM, a crash, a kill -9 of the service) nothing in Dagster
ever will, and the run would stay STARTED and its session open for ever. The run's first
step tags it with its worker's pid and host; `reconcile_sync_sessions`, in the daemon started
again, fails the run and its sessions because that process is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from dagster import DagsterRunStatus

from sync_assets.core.storage import open_store
from sync_assets.local_runs import HOST_TAG, PID_TAG
from sync_assets.partitions import USERS_PARTITIONS_NAME, month_key

from .helpers import polling, sandbox_env, save_tokens
from .helpers.daemon import REPO, add_backfill, instance_at
from .helpers.daemon import dagster_home as make_dagster_home

RECONCILE_SECONDS = 5


def descendants(pid: int) -> list[int]:
    """The processes under `pid` (its step processes), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_for(condition: Callable[[], object], what: str) -> float:
    """`polling.wait_for`, with room for a daemon's start on a busy machine."""
    return polling.wait_for(condition, what, timeout=240.0)


def test_a_daemon_launched_run_killed_mid_run_ends_failed_with_its_session(
    sandbox, server, tmp_path: Path
) -> None:
    home, dagster_home = tmp_path / "data", make_dagster_home(tmp_path)
    env = sandbox_env(
        sandbox,
        server,
        home,
        DAGSTER_HOME=str(dagster_home),
        SYNC_ASSETS_RECONCILE_SECONDS=str(RECONCILE_SECONDS),
    )
    store = open_store(None, home)
    athlete = sandbox.add_athlete(n_activities=900, seed=71, years=2)
    user = "00000000-0000-4000-8000-000000000071"
    save_tokens(store, user, athlete)
    first = month_key(
        datetime.fromisoformat(sandbox.activities(athlete.athlete_id)[0]["start_date"])
    )
    last = month_key(datetime.fromtimestamp(sandbox.now(), UTC))
    months = [m for m in _months(first, last)]
    instance = instance_at(dagster_home)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    # One list page answered, the second held: the run is mid-fetch when it is killed.
    sandbox.set_faults(hold_after_requests=1)
    add_backfill(instance, [f"{m}|{user}" for m in months], "killed run")
    command = [
        str(Path(sys.executable).with_name("dagster-daemon")),
        "run",
        "-w",
        str(REPO / "workspace.yaml"),
    ]

    def start_daemon() -> subprocess.Popen:
        # A session of its own: the daemon, its code server, the run worker and its steps
        # form one process group, killed at once.
        return subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    daemon = start_daemon()
    try:
        runs = []

        def tagged_and_held() -> bool:
            runs[:] = instance.get_runs()
            return (
                len(runs) == 1
                and PID_TAG in runs[0].tags
                and sandbox.request_count(kind="api", path_prefix="/api/v3/athlete/activities") >= 2
                and any(
                    s.status == "fetching_activities" for s in store.run_sessions(runs[0].run_id)
                )
            )

        wait_for(tagged_and_held, "the run to be tagged and held mid-fetch")
        run = runs[0]
        assert run.status == DagsterRunStatus.STARTED
        pid = int(run.tags[PID_TAG])
        assert run.tags[HOST_TAG] == os.uname().nodename
        steps = descendants(pid)
        assert steps  # the held raw_strava_activities step
        assert os.getpgid(pid) == daemon.pid  # the run worker is in the daemon's group
        os.killpg(daemon.pid, signal.SIGKILL)  # daemon, code server, run worker, steps
        daemon.communicate(timeout=60)
        time.sleep(2 * RECONCILE_SECONDS)  # nothing of Dagster is left to notice
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
        assert [s.status for s in store.run_sessions(run.run_id)] == ["fetching_activities"]
        daemon = start_daemon()  # as its service manager restarts it
        restarted = time.monotonic()

        def failed() -> bool:
            status = instance.get_run_by_id(run.run_id).status
            sessions = store.run_sessions(run.run_id)
            return status == DagsterRunStatus.FAILURE and all(
                s.status == "failed" for s in sessions
            )

        wait_for(failed, "the killed run and its session to end failed")
        detected = time.monotonic() - restarted
    finally:
        sandbox.set_faults(hold_after_requests=None)
        daemon.terminate()
        _, err = daemon.communicate(timeout=60)
    (session,) = store.run_sessions(run.run_id)
    assert session.status == "failed" and session.current_phase == "fetching"
    message = session.last_error["message"]
    assert f"its process {pid} on {os.uname().nodename} died (killed or crashed)" in message
    assert session.last_error["details"]["dagster_run_id"] == run.run_id
    failure = [
        e
        for e in instance.all_logs(run.run_id)
        if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_FAILURE"
    ]
    assert failure and "died (killed or crashed)" in (failure[-1].dagster_event.message or ""), (
        err.decode()[-2000:]
    )
    store.close()
    print(
        f"\nkilled run: the daemon's process group (daemon, code server, worker {pid}, "
        f"{len(steps)} step process(es)) SIGKILLed while the listing was held; the run stayed "
        f"STARTED; the daemon started again: run FAILURE and session `failed` {detected:.1f} s "
        f"after (reconcile_sync_sessions every {RECONCILE_SECONDS} s)"
    )


def _months(first: str, last: str) -> list[str]:
    out, (y, m) = [], (int(first[:4]), int(first[5:7]))
    while f"{y:04d}-{m:02d}-01" <= last:
        out.append(f"{y:04d}-{m:02d}-01")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out
