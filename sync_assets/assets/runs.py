"""`runs_table`: the app's `public.runs`, upserted from the fetched activities."""

import time
from typing import Any

import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    Backoff,
    Failure,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)

from sync_assets import metrics
from sync_assets.errors import ErrorInfo, ErrorType, SyncError
from sync_assets.partitions import run_partition_keys, split_key, strava_partitions, sync_spans
from sync_assets.resources.parquet_io import PartitionData, by_partition
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.sessions import SyncState, tracker_for_run
from sync_assets.storage import QuarantineRecord, SessionRecord, Store, StoreResult, runs_rows


def listing_shortfall(
    store: Store, user: str, table: pa.Table, quarantined: int, session: SessionRecord
) -> SyncError | None:
    """The safety net after a complete listing: every activity it returned must now be in
    `runs` (or tombstoned: deleted on Strava since) or in quarantine. None when so.

    Two counts are compared with what the fetch step recorded in the session
    (`activities_fetched`, resumed pages included): the rows that reached this step plus the
    quarantined ones must equal it, and the database must hold every row's id.
    """
    ids = table.column("strava_id").to_pylist()
    missing = store.unstored_ids(user, ids)
    listed = session.activities_fetched
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (", ..." if len(missing) > 10 else "")
        return SyncError(
            ErrorType.DATABASE,
            f"the listing of user {user} returned {listed} activities, but {len(missing)} of "
            f"them are not in runs after the store (ids {shown})",
            retryable=True,
            details={"listed": listed, "missing": len(missing), "missing_ids": missing[:100]},
        )
    if listed > len(ids) + quarantined:
        return SyncError(
            ErrorType.UNKNOWN,
            f"the listing of user {user} returned {listed} activities, but only "
            f"{len(ids)} reached the store and {quarantined} were quarantined: "
            f"{listed - len(ids) - quarantined} unaccounted for",
            retryable=True,
            details={"listed": listed, "stored": len(ids), "quarantined": quarantined},
        )
    return None


def _by_user(keys: list[str], loaded: Any) -> dict[str, list[PartitionData]]:
    users: dict[str, list[PartitionData]] = {}
    for key, data in by_partition(keys, loaded).items():
        users.setdefault(split_key(key)[0], []).append(data)
    return users


def _store_user(
    context: AssetExecutionContext,
    store: Store,
    keys: list[str],
    user: str,
    parts: list[PartitionData],
    total: StoreResult,
) -> int:
    """Upsert one user's rows and quarantine its invalid activities; returns how many were
    quarantined. The user's session ends `completed`, or `failed` when the database refused."""
    table = pa.concat_tables([p.activities for p in parts])
    invalid = pa.concat_tables([p.quarantine for p in parts]).to_pylist()
    dates = table.column("start_date").to_pylist()
    tracker = tracker_for_run(
        store,
        context.run,
        user,
        time_range_start=min(dates, default=None),
        time_range_end=max(dates, default=None),
    )
    tracker.enter(SyncState.STORING)
    try:
        # Each row written names this session (runs.sync_session_id).
        result = store.upsert_runs(runs_rows(table), session_id=tracker.session.id)
        quarantined = store.quarantine(
            [QuarantineRecord(user, q["strava_id"], q["reason"], q["payload"]) for q in invalid],
            session_id=tracker.session.id,
        )
    except Exception as exc:  # the database is down or refused the batch outright
        tracker.fail(
            ErrorInfo(
                type=ErrorType.DATABASE,
                retryable=True,
                message=f"storing runs failed: {type(exc).__name__}",
            )
        )
        raise Failure(
            description=f"storing runs for user {user} failed: {type(exc).__name__}",
            allow_retries=True,
        ) from None
    shortfall = listing_shortfall(store, user, table, len(invalid), tracker.session)
    if shortfall is not None:
        # Loudly, and keeping the staged pages: the next sync starts from them. Not retried
        # in this run: the same rows would meet the same database.
        tracker.fail(shortfall.info())
        raise Failure(description=str(shortfall), allow_retries=False)
    for span in sync_spans([k for k in keys if split_key(k)[0] == user]):
        store.clear_staging(user, span.id)  # stored: a later sync lists Strava afresh
    tracker.complete(
        activities_stored=result.saved,
        activities_updated=result.updated,
        activities_skipped=result.skipped,
        activities_failed=result.failed + len(invalid),
    )
    total.add(result)
    return quarantined


@asset(
    partitions_def=strava_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="strava",
    kinds={"postgres"},
    retry_policy=RetryPolicy(
        max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
    ),
)
def runs_table(
    context: AssetExecutionContext,
    supabase: SupabaseResource,
    weather_enriched_activities,  # noqa: ANN001 - PartitionData, or a dict of them
) -> MaterializeResult:
    """Upserts the partitions' enriched activities into `runs` on (user_id, strava_id):
    re-running a partition changes nothing; invalid activities go to `activity_quarantine`."""
    keys = list(run_partition_keys(context))
    store = supabase.store()
    store.take_pool_stats()  # from here on, count this step's waits for a pooled connection
    started = time.perf_counter()
    total, quarantined = StoreResult(), 0
    by_user = _by_user(keys, weather_enriched_activities)
    try:
        for user, parts in by_user.items():
            quarantined += _store_user(context, store, keys, user, parts, total)
    finally:
        metrics.record(
            store,
            context.run,
            "runs_table",
            context.log,
            users=len(by_user),
            activities=sum(p.activities.num_rows for parts in by_user.values() for p in parts),
            seconds=round(time.perf_counter() - started, 3),
            rows_written=total.saved + total.updated,
            write_seconds=round(total.seconds, 3),
            **metrics.pool_fields(store.take_pool_stats()),
        )
    rows = total.saved + total.updated + total.skipped
    return MaterializeResult(
        metadata={
            "saved": total.saved,
            "updated": total.updated,
            "skipped_unchanged": total.skipped,
            "failed": total.failed,
            "quarantined_invalid": quarantined,
            "store_seconds": round(total.seconds, 3),
            "rows_per_second": round(rows / total.seconds) if total.seconds else 0,
            "errors": MetadataValue.text("\n".join(total.errors[:20]) or "none"),
            "phase_timings": MetadataValue.md(
                metrics.phase_table(metrics.sync_steps(store, context.run))
            ),
        }
    )
