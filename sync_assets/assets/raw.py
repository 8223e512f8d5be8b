"""`raw_strava_activities`: every activity of a user's months, validated, as Parquet."""

from datetime import datetime

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    Failure,
    MetadataValue,
    Output,
    RetryRequested,
    asset,
)

from sync_assets.errors import ErrorType, SyncError
from sync_assets.ingest import FetchReport, fetch_partitions
from sync_assets.partitions import run_partition_keys, strava_partitions
from sync_assets.resources.parquet_io import PartitionData
from sync_assets.resources.strava import StravaResource
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.sessions import SessionTracker, tracker_for_run


def _metadata(report: FetchReport) -> dict[str, object]:
    usage = report.rate_limit_usage
    return {
        "activities": report.activities,
        "quarantined": report.quarantined,
        "partitions": len(report.partitions),
        "strava_queries": report.spans,
        "list_requests": report.list_calls,
        "list_requests_minimum": report.minimum_list_calls,
        "token_requests": report.token_calls,
        "http_requests": report.http_requests,
        "retries": report.retries,
        "resumed_from_checkpoint": report.resumed,
        "deleted_on_strava": report.deleted_on_strava,
        "rate_limit_waits": report.rate_limit_waits,
        "rate_limit_usage_15min": MetadataValue.text(
            f"{usage.get('read_usage_15min', 0)}/{usage.get('read_limit_15min', 0)} read, "
            f"{usage.get('usage_15min', 0)}/{usage.get('limit_15min', 0)} overall"
        ),
        "rate_limit_usage_daily": MetadataValue.text(
            f"{usage.get('read_usage_daily', 0)}/{usage.get('read_limit_daily', 0)} read, "
            f"{usage.get('usage_daily', 0)}/{usage.get('limit_daily', 0)} overall"
        ),
        "fetch_seconds": round(report.seconds, 3),
    }


def as_failure(err: SyncError) -> Failure:
    """A Dagster failure that says what happened and whether a retry can help."""
    metadata: dict[str, object] = {
        "error_type": err.type.value,
        "retryable": err.retryable,
    }
    if err.retry_after:
        metadata["retry_after"] = err.retry_after.isoformat()
    # Step retries were spent (or cannot help): the run ends here; the session says whether a
    # later sync can succeed (`retryable`, `retry_after`).
    return Failure(description=str(err), metadata=metadata, allow_retries=False)


@asset(
    partitions_def=strava_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="parquet_io_manager",
    pool="strava_api",
    group_name="strava",
    kinds={"python", "parquet"},
)
def raw_strava_activities(
    context: AssetExecutionContext, strava: StravaResource, supabase: SupabaseResource
) -> Output[dict[str, PartitionData]]:
    """Strava SummaryActivities of one user and month, validated; invalid ones quarantined.

    A run may cover many months (a single-run backfill): they are fetched with one paginated
    query per user and block of months, then written month by month.
    """
    keys = run_partition_keys(context)
    store = supabase.store()

    def tracker(user_id: str, start: datetime, end: datetime) -> SessionTracker:
        return tracker_for_run(store, context.run, user_id, window_start=start, window_end=end)

    try:
        report = fetch_partitions(
            lambda user: strava.client(user, logger=context.log), keys, tracker, staging=store
        )
    except SyncError as err:
        if (
            err.retryable
            and err.type != ErrorType.RATE_LIMIT
            and (context.retry_number < strava.step_retries)
        ):
            # The client already retried with backoff; a fresh attempt later (it resumes from
            # the checkpoint) may find the service back. Waits grow: 1x, 2x, 4x the base.
            wait = strava.step_retry_seconds * 2**context.retry_number
            context.log.warning(f"{err}; the step retries in {wait:.0f} s")
            raise RetryRequested(max_retries=strava.step_retries, seconds_to_wait=wait) from None
        raise as_failure(err) from None
    context.log.info(
        f"{report.activities} activities ({report.quarantined} quarantined) in "
        f"{len(keys)} partitions with {report.list_calls} list requests "
        f"(minimum {report.minimum_list_calls})"
    )
    return Output(report.partitions, metadata=_metadata(report))
