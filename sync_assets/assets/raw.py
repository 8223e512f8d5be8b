"""`raw_strava_activities`: every activity of a user's months, validated, as Parquet."""

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    Failure,
    MetadataValue,
    Output,
    RetryRequested,
    asset,
)

from sync_assets.core import incremental, metrics, settings
from sync_assets.core.errors import ErrorType, SyncError
from sync_assets.core.ingest import FetchReport, PartitionCounts, fetch_partitions
from sync_assets.core.sessions import SessionTracker, tracker_for_run
from sync_assets.core.storage.base import Store
from sync_assets.dagster_private import add_partition_metadata
from sync_assets.partitions import run_partition_keys, split_key, strava_partitions
from sync_assets.resources.parquet_io import partition_sink
from sync_assets.resources.strava import StravaResource
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.sync_request import SyncOptions
from sync_assets.user_runs import step_hold

STEP = "raw_strava_activities"


def _usage(used: int, limit: int) -> str:
    return f"{used}/{limit} ({used / limit:.0%})" if limit else f"{used}/?"


def _metadata(report: FetchReport) -> dict[str, object]:
    """The run's figures, on every partition's materialization under `run_` keys: one query
    serves all the run's months, so its requests, latency and totals belong to the run."""
    usage = report.rate_limit_usage
    latency = report.latency
    return {
        "run_activities": report.activities,
        "run_quarantined": report.quarantined,
        "run_partitions": len(report.partitions),
        "run_strava_queries": report.spans,
        "run_list_requests": report.list_calls,
        "run_list_requests_minimum": report.minimum_list_calls,
        "run_requests_vs_minimum": MetadataValue.text(
            f"{report.list_calls} list requests for a minimum of {report.minimum_list_calls} "
            f"(+{report.token_calls} token, {report.retries} retries, "
            f"{report.http_requests} on the wire)"
        ),
        "run_token_requests": report.token_calls,
        "run_http_requests": report.http_requests,
        "run_retries": report.retries,
        "run_api_errors": report.api_errors,
        "run_api_latency_ms": MetadataValue.text(
            f"avg {latency.total_ms / latency.requests:.0f}, "
            f"p95 {latency.percentile_ms(0.95):.0f}, max {latency.max_ms:.0f}"
            if latency.requests
            else "no request"
        ),
        "run_resumed_from_checkpoint": report.resumed,
        "run_deleted_on_strava": report.deleted_on_strava,
        "run_incremental_listings": report.partial_listings,
        "run_merged_from_store": report.merged_from_store,
        "run_rate_limit_waits": report.rate_limit_waits,
        "run_rate_limit_usage_15min": MetadataValue.text(
            f"{_usage(usage.get('read_usage_15min', 0), usage.get('read_limit_15min', 0))} "
            f"read, {_usage(usage.get('usage_15min', 0), usage.get('limit_15min', 0))} overall"
        ),
        "run_rate_limit_usage_daily": MetadataValue.text(
            f"{_usage(usage.get('read_usage_daily', 0), usage.get('read_limit_daily', 0))} "
            f"read, {_usage(usage.get('usage_daily', 0), usage.get('limit_daily', 0))} overall"
        ),
        "run_notes": MetadataValue.text(
            "\n".join(
                f"user {user}: {note}" for user, notes in report.notes.items() for note in notes
            )
            or "none"
        ),
        "run_fetch_seconds": round(report.seconds, 3),
        # The seed's FetchResponse.metadata, for the run: totalFetched - duplicatesSkipped -
        # filteredCount is the activities listed (`run_activities` adds those merged from the
        # store by an incremental listing).
        "totalFetched": report.total_fetched,
        "filteredCount": report.quarantined,
        "duplicatesSkipped": report.duplicates_skipped,
        "run_activities_per_second": round(report.activities / report.seconds)
        if report.seconds
        else 0,
    }


def _summary(report: FetchReport, partitions: int) -> str:
    return (
        f"{report.activities} activities ({report.quarantined} quarantined) in "
        f"{partitions} partitions with {report.list_calls} list requests "
        f"(minimum {report.minimum_list_calls})"
    )


def partition_metadata(counts: PartitionCounts) -> dict[str, object]:
    """What one partition (a user's month) holds: its own counts, beside the run's."""
    return {"activities": counts.activities, "quarantined": counts.quarantined}


def _step_fields(keys: Sequence[str], report: FetchReport) -> dict[str, object]:
    """The step's `sync_step_metrics` row, from what the run's clients spent (so far)."""
    return {
        "api": "strava",
        "users": len({split_key(k)[0] for k in keys}),
        "activities": report.activities,
        "seconds": round(report.seconds, 3),
        "api_errors": report.api_errors,
        "api_rate_limited": report.http_429,
        "api_retries": report.retries,
        "api_quota_used": float(report.http_requests - report.token_calls),
        **metrics.api_fields(report.latency),
    }


def strava_credentials(strava: StravaResource) -> dict[str, str]:
    """The application's credentials by the variable that sets them ("" when unset)."""
    return {"STRAVA_CLIENT_ID": strava.client_id, "STRAVA_CLIENT_SECRET": strava.client_secret}


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


def _missing_credentials(strava: StravaResource) -> SyncError | None:
    unset = [name for name, value in strava_credentials(strava).items() if not value]
    if not unset:
        return None
    return SyncError(
        ErrorType.CONFIGURATION,
        f"{' and '.join(unset)} {'is' if len(unset) == 1 else 'are'} not set: the "
        "Strava application's credentials (see README: 'Pointing it at real Strava')",
        retryable=False,
    )


def _tracker_for(store: Store, run: Any) -> Callable[[str, datetime, datetime], SessionTracker]:
    """The run's session tracker of a user and window, as `fetch_partitions` asks for it."""

    def tracker(user_id: str, start: datetime, end: datetime) -> SessionTracker:
        return tracker_for_run(store, run, user_id, time_range_start=start, time_range_end=end)

    return tracker


def _retry_or_failure(
    context: AssetExecutionContext, strava: StravaResource, err: SyncError
) -> RetryRequested | Failure:
    """What a failed fetch raises: a step retry while retries are left and may help, else the
    failure (`as_failure`)."""
    if (
        err.retryable
        and err.type != ErrorType.RATE_LIMIT
        and (context.retry_number < strava.step_retries)
    ):
        # The client already retried with backoff; a fresh attempt later (it resumes from
        # the checkpoint) may find the service back. Waits grow: 1x, 2x, 4x the base.
        wait = strava.step_retry_seconds * 2**context.retry_number
        context.log.warning(f"{err}; the step retries in {wait:.0f} s")
        return RetryRequested(max_retries=strava.step_retries, seconds_to_wait=wait)
    return as_failure(err)


@asset(
    partitions_def=strava_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="parquet_io_manager",
    pool="strava_api",
    group_name="strava",
    kinds={"python", "parquet"},
)
def raw_strava_activities(
    context: AssetExecutionContext,
    config: SyncOptions,
    strava: StravaResource,
    supabase: SupabaseResource,
) -> Output[dict[str, Any]]:
    """Strava SummaryActivities of one user and month, validated; invalid ones quarantined.

    A run may cover many months (a single-run backfill): they are fetched with one paginated
    query per user and block of months, each month written as soon as the listing is past it
    (the output references the written files: `WrittenPartition`), so memory does not grow
    with the history. `config.max_retries`: the Strava client's retries of a failed request.
    """
    missing = _missing_credentials(strava)
    if missing is not None:
        raise as_failure(missing)
    keys = run_partition_keys(context)
    store = supabase.store()
    report = FetchReport()
    # Scheduled and push-event runs list what is new since the user's watermark, if they can.
    lookback = timedelta(hours=settings.incremental_lookback_hours())
    rule = incremental.policy(context.run.tags, lookback)
    sink = partition_sink(context.resources.parquet_io_manager, context.asset_key)
    try:
        # One run of a user at a time (`user_runs`): waits while another run holds a user.
        # A metrics row after a SyncError too (what the failed fetch spent); other errors none.
        with (
            step_hold(context, store, {split_key(k)[0] for k in keys}) as hold,
            metrics.step(
                store,
                context.run,
                STEP,
                context.log,
                collect=lambda: _step_fields(keys, report),
                record_on=SyncError,
            ),
        ):
            fetch_partitions(
                lambda user: strava.client(
                    user, logger=context.log, max_retries=config.max_retries
                ),
                keys,
                _tracker_for(store, context.run),
                staging=store,
                report=report,
                rule=rule,
                sink=sink,
                owner=hold.run_id,
            )
    except SyncError as err:
        raise _retry_or_failure(context, strava, err) from None
    context.log.info(_summary(report, len(keys)))
    add_partition_metadata(
        context, {key: partition_metadata(counts) for key, counts in report.partitions.items()}
    )
    return Output(sink.outputs, metadata=_metadata(report))
