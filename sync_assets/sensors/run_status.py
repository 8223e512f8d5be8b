"""Dagster's run status feeds `sync_sessions`, so no session is left hanging.

The assets write each phase themselves; these sensors cover what asset code cannot: a run
whose process was killed, that was cancelled from the UI, or whose step could not write its
own failure (the database dropped it) ends `failed` with the reason. Run status sensors start
from the newest event and advance even when they raise, so every write is idempotent (keyed
by run) and `reconcile_sync_sessions` sweeps up anything missed.

A run worker killed outright (SIGKILL, out of memory) writes no end at all, and Dagster's run
monitoring cannot see it under the default launcher (`check_run_worker_health` is for the
container launchers): `reconcile_sync_sessions` fails every started run of this host whose
worker process is gone (`local_runs.fail_dead_local_runs`; the worker's pid and host are
tagged by its first step), then its sessions.

Every end of a run also deletes, again, the Parquet files of a user of the run who
deauthorized the app: the database refuses their rows from the deletion on, but a step that
was writing a file at that moment may have finished it after the deletion's sweep.
"""

from dagster import (
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunsFilter,
    RunStatusSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    run_status_sensor,
    sensor,
)

from sync_assets.core import settings
from sync_assets.core.sessions import ROOT_RUN_TAG, finish_from_run_status, session_key
from sync_assets.core.storage.base import DEAUTHORIZED_STATUS, Store
from sync_assets.dagster_private import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from sync_assets.local_runs import fail_dead_local_runs
from sync_assets.partitions import split_key
from sync_assets.resources.parquet_io import delete_user_files
from sync_assets.resources.supabase import SupabaseResource

FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def run_users(run: DagsterRun) -> set[str]:
    """The users a run syncs, from its partition tags (`<month>|<user>` keys)."""
    users = set()
    for tag in (PARTITION_NAME_TAG, ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG):
        key = run.tags.get(tag)
        if key and "|" in key:
            users.add(split_key(key)[0])
    return users


def finish_run(store: Store, run: DagsterRun, *, success: bool, reason: str | None) -> int:
    """The end of `run` in its sessions (`finish_from_run_status`; how many it finished), and
    the files of its deauthorized users deleted again (see the module's docstring)."""
    finished = finish_from_run_status(
        store, session_key(run.tags, run.run_id), success=success, reason=reason
    )
    for user in sorted(run_users(run)):
        if store.connection_status(user) == DEAUTHORIZED_STATUS:
            delete_user_files(settings.storage_url(), user)
    return len(finished)


@run_status_sensor(
    run_status=DagsterRunStatus.SUCCESS,
    default_status=DefaultSensorStatus.RUNNING,
    name="sync_sessions_on_success",
)
def sync_sessions_on_success(context: RunStatusSensorContext, supabase: SupabaseResource) -> None:
    finish_run(supabase.store(), context.dagster_run, success=True, reason=None)


@run_failure_sensor(default_status=DefaultSensorStatus.RUNNING, name="sync_sessions_on_failure")
def sync_sessions_on_failure(context: RunFailureSensorContext, supabase: SupabaseResource) -> None:
    run = context.dagster_run
    reason = context.failure_event.message if context.failure_event else None
    finish_run(
        supabase.store(),
        run,
        success=False,
        reason=f"Dagster run {run.run_id} failed: {reason or 'no reason given'}",
    )


@run_status_sensor(
    run_status=DagsterRunStatus.CANCELED,
    default_status=DefaultSensorStatus.RUNNING,
    name="sync_sessions_on_cancel",
)
def sync_sessions_on_cancel(context: RunStatusSensorContext, supabase: SupabaseResource) -> None:
    run = context.dagster_run
    finish_run(
        supabase.store(), run, success=False, reason=f"Dagster run {run.run_id} was cancelled"
    )


@sensor(
    minimum_interval_seconds=settings.reconcile_seconds(),
    default_status=DefaultSensorStatus.RUNNING,
    name="reconcile_sync_sessions",
)
def reconcile_sync_sessions(context: SensorEvaluationContext, supabase: SupabaseResource):
    """Fail the started runs of this host whose worker died, then finish the sessions whose
    run ended while no status sensor was looking."""
    store = supabase.store()
    dead = fail_dead_local_runs(context.instance, store)
    for run_id in dead:
        context.log.warning(f"run {run_id} failed: its worker process died")
    finished = 0
    for session in store.open_sessions():
        run = context.instance.get_run_by_id(session.dagster_run_id)
        if run is None:
            continue
        # A re-executed run shares its root's session: look at the newest re-execution.
        newer = context.instance.get_runs(
            filters=RunsFilter(tags={ROOT_RUN_TAG: run.run_id}), limit=1
        )
        latest = newer[0] if newer else run
        if latest.status not in FINISHED:
            continue
        finished += finish_run(
            store,
            latest,
            success=latest.status == DagsterRunStatus.SUCCESS,
            reason=f"Dagster run {latest.run_id} ended {latest.status.value}",
        )
    if not finished and not dead:
        return SkipReason("no dead run, no open session belongs to a finished run")
    context.log.info(f"failed {len(dead)} dead runs; finished {finished} sync sessions")
    return SkipReason(f"failed {len(dead)} dead runs, finished {finished} sync sessions")
