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

from sync_assets import metrics, settings
from sync_assets.errors import ErrorInfo, ErrorType, SyncError
from sync_assets.partitions import run_partition_keys, split_key, strava_partitions, sync_spans
from sync_assets.resources.parquet_io import PartitionData, by_partition
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.sessions import SyncState, tracker_for_run
from sync_assets.storage import QuarantineRecord, SessionRecord, Store, StoreResult, runs_rows


def database_kind() -> str:
    """The Dagster kind of the database `runs_table` writes (`settings.database_url()`)."""
    return "postgres" if settings.database_url() else "sqlite"


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


def _by_user(keys: list[str], loaded: Any) -> dict[str, dict[str, PartitionData]]:
    users: dict[str, dict[str, PartitionData]] = {}
    for key, data in by_partition(keys, loaded).items():
        users.setdefault(split_key(key)[0], {})[key] = data
    return users


def partition_metadata(result: StoreResult, quarantined: int) -> dict[str, object]:
    """One partition's own store figures (a user's month)."""
    return {
        "saved": result.saved,
        "updated": result.updated,
        "skipped_unchanged": result.skipped,
        "failed": result.failed,
        "quarantined_invalid": quarantined,
    }


def _store_user(
    context: AssetExecutionContext,
    store: Store,
    keys: list[str],
    user: str,
    parts: dict[str, PartitionData],
    total: StoreResult,
) -> tuple[int, dict[str, dict[str, object]]]:
    """Upsert one user's rows and quarantine its invalid activities, month by month (each
    partition's materialization says what happened to its own rows); returns how many were
    quarantined and each partition's figures. The user's session ends `completed`, or `failed`
    when the database refused."""
    table = pa.concat_tables([p.activities for p in parts.values()])
    dates = table.column("start_date").to_pylist()
    tracker = tracker_for_run(
        store,
        context.run,
        user,
        time_range_start=min(dates, default=None),
        time_range_end=max(dates, default=None),
    )
    tracker.enter(SyncState.STORING)
    mine, quarantined, by_key = StoreResult(), 0, {}
    try:
        for key, part in parts.items():
            # Each row written names this session (runs.sync_session_id).
            result = (
                store.upsert_runs(runs_rows(part.activities), session_id=tracker.session.id)
                if part.activities.num_rows
                else StoreResult()
            )
            invalid = part.quarantine.to_pylist()
            count = store.quarantine(
                [
                    QuarantineRecord(user, q["strava_id"], q["reason"], q["payload"])
                    for q in invalid
                ],
                session_id=tracker.session.id,
            )
            mine.add(result)
            quarantined += count
            by_key[key] = partition_metadata(result, count)
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
    invalid_count = sum(p.quarantine.num_rows for p in parts.values())
    shortfall = listing_shortfall(store, user, table, invalid_count, tracker.session)
    if shortfall is not None:
        # Loudly, and keeping the staged pages: the next sync starts from them. Not retried
        # in this run: the same rows would meet the same database.
        tracker.fail(shortfall.info())
        raise Failure(description=str(shortfall), allow_retries=False)
    for span in sync_spans([k for k in keys if split_key(k)[0] == user]):
        store.clear_staging(user, span.id)  # stored: a later sync lists Strava afresh
    tracker.complete(
        activities_stored=mine.saved,
        activities_updated=mine.updated,
        activities_skipped=mine.skipped,
        activities_failed=mine.failed + invalid_count,
    )
    total.add(mine)
    return quarantined, by_key


@asset(
    partitions_def=strava_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="strava",
    # The backend it writes, as configured when the code location loads: Supabase/PostgreSQL
    # with DATABASE_URL, else the embedded SQLite.
    kinds={database_kind()},
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
    by_key: dict[str, dict[str, object]] = {}
    try:
        for user, parts in by_user.items():
            count, figures = _store_user(context, store, keys, user, parts, total)
            quarantined += count
            by_key.update(figures)
    finally:
        metrics.record(
            store,
            context.run,
            "runs_table",
            context.log,
            users=len(by_user),
            activities=sum(
                p.activities.num_rows for parts in by_user.values() for p in parts.values()
            ),
            seconds=round(time.perf_counter() - started, 3),
            rows_written=total.saved + total.updated,
            write_seconds=round(total.seconds, 3),
            **metrics.pool_fields(store.take_pool_stats()),
        )
    rows = total.saved + total.updated + total.skipped
    for key, figures in by_key.items():
        context.add_asset_metadata(figures, partition_key=key)
    # The run's figures, on every partition's materialization as `run_` keys.
    return MaterializeResult(
        metadata={
            "run_saved": total.saved,
            "run_updated": total.updated,
            "run_skipped_unchanged": total.skipped,
            "run_failed": total.failed,
            "run_quarantined_invalid": quarantined,
            "run_store_seconds": round(total.seconds, 3),
            "run_rows_per_second": round(rows / total.seconds) if total.seconds else 0,
            "run_errors": MetadataValue.text("\n".join(total.errors[:20]) or "none"),
            "run_phase_timings": MetadataValue.md(
                metrics.phase_table(metrics.sync_steps(store, context.run))
            ),
        }
    )
