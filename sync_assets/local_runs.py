"""Runs executed in this machine's own processes (`sync-assets sync`, the embedded default):
each is tagged with its process id and host, so a later command can tell a run whose process
was killed (SIGKILL, out of memory, power cut) from one still working. Dagster keeps such a
run STARTED for ever under the default launcher; here it ends FAILURE with the reason, and
its sync sessions end `failed`, before the relaunch resumes from their checkpoint.
"""

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from sync_assets.core.sessions import finish_from_run_status, session_key
from sync_assets.core.storage.base import Store

# Dagster writes a step's asset events in batches of this many when the variable is set (it
# reads it at every event): a range run's materializations of an asset then cost one INSERT on
# dagster-postgres instead of one per partition. Unset, Dagster writes them one by one.
EVENT_BATCH_SIZE_VAR = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = "1000"
PID_TAG = "sync_assets/pid"
HOST_TAG = "sync_assets/host"


def local_run_tags() -> dict[str, str]:
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


@contextmanager
def batched_event_writes() -> Iterator[str]:
    """Batched event writes for the runs executed in this block, unless the environment says
    otherwise (`DAGSTER_EVENT_BATCH_SIZE=0` turns batching off); yields the size in force and
    leaves the environment as it found it. Run workers launched by the daemon need the
    variable in their own environment (README, "Dagster's bookkeeping")."""
    given = os.environ.get(EVENT_BATCH_SIZE_VAR)
    if given is not None:
        yield given
        return
    os.environ[EVENT_BATCH_SIZE_VAR] = EVENT_BATCH_SIZE
    try:
        yield EVENT_BATCH_SIZE
    finally:
        os.environ.pop(EVENT_BATCH_SIZE_VAR, None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def fail_dead_local_runs(instance: DagsterInstance, store: Store) -> list[str]:
    """Fail the started runs of this host whose process is gone; return their ids."""
    host = socket.gethostname()
    dead = []
    runs = instance.get_runs(
        filters=RunsFilter(
            statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING],
            tags={HOST_TAG: host},
        )
    )
    for run in runs:
        pid = run.tags.get(PID_TAG, "")
        if not pid.isdigit() or _alive(int(pid)):
            continue
        reason = f"Dagster run {run.run_id} failed: its process {pid} died (killed or crashed)"
        instance.report_run_failed(run, message=reason)
        finish_from_run_status(
            store, session_key(run.tags, run.run_id), success=False, reason=reason
        )
        dead.append(run.run_id)
    return dead
