"""Runs executed in this machine's own processes: each is tagged with its process id and
host, so a run whose process was killed (SIGKILL, out of memory, power cut) can be told from
one still working. Dagster keeps such a run STARTED for ever under the default launcher (its
run monitoring checks a run worker's health only for launchers that can, the container
ones); here it ends FAILURE with the reason, and its sync sessions end `failed`.

* `sync-assets sync` runs in its own process, tagged when the run is created
  (`local_run_tags`); the next command fails it before resuming from its checkpoint.
* A run the daemon (or the UI) launches runs in a run worker that the code server starts
  on its own host. Its first step tags the run with the worker's pid, as Dagster's event
  "Started process for run (pid: N)" gives it, and the host (`record_run_process`), when the
  step is that worker or its child (the default executors; not a Celery worker elsewhere).
  `reconcile_sync_sessions`, evaluated by the code server on that host, fails the run whose
  worker is gone (`fail_dead_local_runs`).
"""

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

from sync_assets.core import settings
from sync_assets.core.errors import SyncError
from sync_assets.core.leases import UserHold
from sync_assets.core.sessions import finish_from_run_status, session_key
from sync_assets.core.storage.base import LeaseHolder, Store
from sync_assets.user_runs import USER_TAG, active_runs_of, run_ended

# Dagster writes a step's asset events in batches of this many when the variable is set (it
# reads it at every event): a range run's materializations of an asset then cost one INSERT on
# dagster-postgres instead of one per partition. Unset, Dagster writes them one by one.
EVENT_BATCH_SIZE_VAR = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = "1000"
PID_TAG = "sync_assets/pid"
HOST_TAG = "sync_assets/host"


def local_run_tags(user_id: str | None = None) -> dict[str, str]:
    """This process's tags (and the run's user: the queue counts the run as the user's)."""
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    return {**tags, USER_TAG: user_id} if user_id else tags


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


# The message of Dagster's engine event, in the run worker, saying which process runs the run.
RUN_PROCESS_EVENT = "Started process for run"


def run_worker_pid(instance: DagsterInstance, run_id: str) -> int | None:
    """The pid of the run's worker, from Dagster's own engine event (the newest one: a
    resumed run has a new worker), or None."""
    pid = None
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        if event is None or not (event.message or "").startswith(RUN_PROCESS_EVENT):
            continue
        value = event.engine_event_data.metadata.get("pid")
        text = str(getattr(value, "value", value) or "")
        if text.isdigit():
            pid = int(text)
    return pid


def record_run_process(instance: DagsterInstance, run: DagsterRun) -> bool:
    """Tag `run` with its worker's pid and host, if it has no such tags yet and this process
    is that worker or its child (a step of the multiprocess or in-process executor); True
    when it tagged. Called as a step's resources are set up, so a run is tagged by its first
    step; a run killed before any step started is not (nor is a step on a Celery worker)."""
    if PID_TAG in run.tags:
        return False
    pid = run_worker_pid(instance, run.run_id)
    if pid is None or pid not in (os.getpid(), os.getppid()):
        return False
    instance.add_run_tags(run.run_id, {PID_TAG: str(pid), HOST_TAG: socket.gethostname()})
    return True


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
        reason = (
            f"Dagster run {run.run_id} failed: its process {pid} on {host} died (killed or crashed)"
        )
        instance.report_run_failed(run, message=reason)
        finish_from_run_status(
            store, session_key(run.tags, run.run_id), success=False, reason=reason
        )
        dead.append(run.run_id)
    return dead


@contextmanager
def user_turn(
    instance: DagsterInstance,
    store: Store,
    user_id: str,
    run_id: str,
    *,
    notify: Callable[[str], None] | None = None,
) -> Iterator[UserHold]:
    """The turn of a run executed in this process (`sync-assets sync`, which bypasses the
    instance's run queue) among the runs of `user_id`: it waits while a run of the user is
    starting or working in the instance (one the queue launched), then holds the user in the
    database for the whole run (other processes' steps wait meanwhile), and frees it at the
    end, however the run ended."""
    told: set[str] = set()
    deadline = time.monotonic() + settings.user_wait_seconds()

    def queue_busy() -> bool:
        active = active_runs_of(instance, user_id, run_id)
        for run in active:
            if run.run_id not in told and notify is not None:
                notify(f"user {user_id} is being synced by run {run.run_id[:8]}: waiting for it")
            told.add(run.run_id)
        return bool(active)

    def waiting(user: str, holder: LeaseHolder) -> None:
        if notify is not None and holder.run_id not in told:
            notify(f"user {user} is being synced by run {holder.run_id[:8]}: waiting for it")
        told.add(holder.run_id)

    while True:
        while queue_busy() and time.monotonic() < deadline:
            time.sleep(1.0)
        hold = UserHold(
            store,
            [user_id],
            run_id,
            release=True,
            holder_ended=run_ended(instance),
            on_wait=waiting,
        )
        hold.__enter__()
        # The queue may have started a run of the user meanwhile: it goes first (its steps
        # would wait for this hold otherwise, its run open beside this one).
        if time.monotonic() >= deadline or not queue_busy():
            break
        hold.__exit__(None, None, None)
    try:
        yield hold
    finally:
        hold.__exit__(None, None, None)


def fail_open_sessions(finish: Callable[[], int], patience: float = 120.0) -> int:
    """After a run of this process failed: `finish` (the run status sensors' `finish_run`)
    ends its sessions still in a working state `failed` (a step that failed on a database
    that had gone could not say so itself). Patient: the database may still be coming back;
    returns the sessions failed."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return finish()
        except SyncError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2.0)
