"""Dagster's run status feeds `sync_sessions`, so no session is left hanging.

The assets write each phase themselves; these sensors cover what asset code cannot: a run
whose process was killed, or that was cancelled from the UI, ends `failed` with the reason.
Run status sensors start from the newest event and advance even when they raise, so every
write is idempotent (keyed by run) and `reconcile_sync_sessions` sweeps up anything missed.
"""

from dagster import (
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

from sync_assets.core.sessions import ROOT_RUN_TAG, finish_from_run_status, session_key
from sync_assets.resources.supabase import SupabaseResource

FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


@run_status_sensor(
    run_status=DagsterRunStatus.SUCCESS,
    default_status=DefaultSensorStatus.RUNNING,
    name="sync_sessions_on_success",
)
def sync_sessions_on_success(context: RunStatusSensorContext, supabase: SupabaseResource) -> None:
    run = context.dagster_run
    finish_from_run_status(
        supabase.store(), session_key(run.tags, run.run_id), success=True, reason=None
    )


@run_failure_sensor(default_status=DefaultSensorStatus.RUNNING, name="sync_sessions_on_failure")
def sync_sessions_on_failure(context: RunFailureSensorContext, supabase: SupabaseResource) -> None:
    run = context.dagster_run
    reason = context.failure_event.message if context.failure_event else None
    finish_from_run_status(
        supabase.store(),
        session_key(run.tags, run.run_id),
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
    finish_from_run_status(
        supabase.store(),
        session_key(run.tags, run.run_id),
        success=False,
        reason=f"Dagster run {run.run_id} was cancelled",
    )


@sensor(
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    name="reconcile_sync_sessions",
)
def reconcile_sync_sessions(context: SensorEvaluationContext, supabase: SupabaseResource):
    """Finish sessions whose run ended while no status sensor was looking."""
    store = supabase.store()
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
        finished += len(
            finish_from_run_status(
                store,
                session.dagster_run_id,
                success=latest.status == DagsterRunStatus.SUCCESS,
                reason=f"Dagster run {latest.run_id} ended {latest.status.value}",
            )
        )
    if not finished:
        return SkipReason("no open session belongs to a finished run")
    context.log.info(f"finished {finished} sync sessions from their runs' status")
    return SkipReason(f"finished {finished} sync sessions")
