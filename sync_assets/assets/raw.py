"""`raw_strava_activities`: every activity of a user's months, validated, as Parquet."""

from collections.abc import Sequence
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

from sync_assets import metrics
from sync_assets.errors import ErrorType, SyncError
from sync_assets.ingest import FetchReport, fetch_partitions
from sync_assets.partitions import run_partition_keys, split_key, strava_partitions
from sync_assets.resources.parquet_io import PartitionData
from sync_assets.resources.strava import StravaResource
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.sessions import SessionTracker, tracker_for_run
from sync_assets.storage.base import Store


def _usage(used: int, limit: int) -> str:
    return f"{used}/{limit} ({used / limit:.0%})" if limit else f"{used}/?"


def _metadata(report: FetchReport) -> dict[str, object]:
    usage = report.rate_limit_usage
    latency = report.latency
    return {
        "activities": report.activities,
        "quarantined": report.quarantined,
        "partitions": len(report.partitions),
        "strava_queries": report.spans,
        "list_requests": report.list_calls,
        "list_requests_minimum": report.minimum_list_calls,
        "requests_vs_minimum": MetadataValue.text(
            f"{report.list_calls} list requests for a minimum of {report.minimum_list_calls} "
            f"(+{report.token_calls} token, {report.retries} retries, "
            f"{report.http_requests} on the wire)"
        ),
        "token_requests": report.token_calls,
        "http_requests": report.http_requests,
        "retries": report.retries,
        "api_errors": report.api_errors,
        "api_latency_ms": MetadataValue.text(
            f"avg {latency.total_ms / latency.requests:.0f}, "
            f"p95 {latency.percentile_ms(0.95):.0f}, max {latency.max_ms:.0f}"
            if latency.requests
            else "no request"
        ),
        "resumed_from_checkpoint": report.resumed,
        "deleted_on_strava": report.deleted_on_strava,
        "rate_limit_waits": report.rate_limit_waits,
        "rate_limit_usage_15min": MetadataValue.text(
            f"{_usage(usage.get('read_usage_15min', 0), usage.get('read_limit_15min', 0))} "
            f"read, {_usage(usage.get('usage_15min', 0), usage.get('limit_15min', 0))} overall"
        ),
        "rate_limit_usage_daily": MetadataValue.text(
            f"{_usage(usage.get('read_usage_daily', 0), usage.get('read_limit_daily', 0))} "
            f"read, {_usage(usage.get('usage_daily', 0), usage.get('limit_daily', 0))} overall"
        ),
        "notes": MetadataValue.text(
            "\n".join(
                f"user {user}: {note}" for user, notes in report.notes.items() for note in notes
            )
            or "none"
        ),
        "fetch_seconds": round(report.seconds, 3),
        "activities_per_second": round(report.activities / report.seconds) if report.seconds else 0,
    }


def _record(
    store: Store, context: AssetExecutionContext, keys: Sequence[str], report: FetchReport
) -> None:
    metrics.record(
        store,
        context.run,
        "raw_strava_activities",
        context.log,
        api="strava",
        users=len({split_key(k)[0] for k in keys}),
        activities=report.activities,
        seconds=round(report.seconds, 3),
        api_errors=report.api_errors,
        api_rate_limited=report.http_429,
        api_retries=report.retries,
        api_quota_used=float(report.http_requests - report.token_calls),
        **metrics.api_fields(report.latency),
    )


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
        return tracker_for_run(
            store, context.run, user_id, time_range_start=start, time_range_end=end
        )

    report = FetchReport()
    try:
        fetch_partitions(
            lambda user: strava.client(user, logger=context.log),
            keys,
            tracker,
            staging=store,
            report=report,
        )
    except SyncError as err:
        _record(store, context, keys, report)
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
    _record(store, context, keys, report)
    context.log.info(
        f"{report.activities} activities ({report.quarantined} quarantined) in "
        f"{len(keys)} partitions with {report.list_calls} list requests "
        f"(minimum {report.minimum_list_calls})"
    )
    return Output(report.partitions, metadata=_metadata(report))
