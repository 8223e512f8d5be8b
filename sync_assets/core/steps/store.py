"""Storing a run's partitions: the work behind `runs_table`.

User by user, each month's rows are upserted into `runs` (on user_id, strava_id) and its
invalid activities quarantined; the listing is then checked against what the database holds
(`listing_shortfall`), the staged pages are cleared, the user's listing watermark advances
(`incremental.advance_watermark`) and the user's session ends `completed`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sync_assets.core import incremental
from sync_assets.core.errors import ErrorContext, ErrorInfo, ErrorType, SyncError
from sync_assets.core.sessions import SessionTracker, SyncState, tracker_for_run
from sync_assets.core.steps import classified, fail_session
from sync_assets.core.storage import QuarantineRecord, SessionRecord, Store, StoreResult
from sync_assets.core.windows import split_key, sync_spans

if TYPE_CHECKING:
    from sync_assets.core.models import PartitionData

STEP = "runs_table"


class StoreFailed(Exception):
    """Storing a user's rows failed (the user's session says why); `retry_step`: whether a
    retry of the step may help (a database that was down may be back; a shortfall would meet
    the same rows and the same database)."""

    def __init__(self, message: str, *, retry_step: bool) -> None:
        super().__init__(message)
        self.retry_step = retry_step


def listing_shortfall(
    store: Store, user: str, table: pa.Table, quarantined: int, session: SessionRecord
) -> SyncError | None:
    """The safety net after a complete listing: every activity it returned must now be in
    `runs` (or tombstoned: deleted on Strava since) or in quarantine. None when so.

    Two counts are compared with what the fetch step recorded in the session
    (`activities_fetched`, resumed pages included, plus the stored rows an incremental listing
    merged in): the rows that reached this step plus the quarantined ones must equal it, and
    the database must hold every row's id.
    """
    ids = table.column("strava_id").to_pylist()
    missing = store.unstored_ids(user, ids)
    listed = session.activities_fetched
    merged = incremental.merged_rows(session)
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (", ..." if len(missing) > 10 else "")
        return SyncError(
            ErrorType.DATABASE,
            f"the listing of user {user} returned {listed} activities, but {len(missing)} of "
            f"them are not in runs after the store (ids {shown})",
            retryable=True,
            details={"listed": listed, "missing": len(missing), "missing_ids": missing[:100]},
        )
    if listed + merged > len(ids) + quarantined:
        also = f" (and {merged} more came from the store)" if merged else ""
        return SyncError(
            ErrorType.UNKNOWN,
            f"the listing of user {user} returned {listed} activities{also}, but only "
            f"{len(ids)} reached the store and {quarantined} were quarantined: "
            f"{listed + merged - len(ids) - quarantined} unaccounted for",
            retryable=True,
            details={
                "listed": listed,
                "merged": merged,
                "stored": len(ids),
                "quarantined": quarantined,
            },
        )
    return None


def by_user(data: Mapping[str, PartitionData]) -> dict[str, dict[str, PartitionData]]:
    """The partitions (key -> data) of each user, in the order given."""
    users: dict[str, dict[str, PartitionData]] = {}
    for key, part in data.items():
        users.setdefault(split_key(key)[0], {})[key] = part
    return users


@dataclass
class StoreOutcome:
    """What `store_partitions` did; filled as it goes, so a failed run still says what it
    wrote (`step_fields`)."""

    users: int = 0
    activities: int = 0  # the rows handed to the step
    total: StoreResult = field(default_factory=StoreResult)  # the run's upserts
    quarantined: int = 0
    # Each partition's own figures: what its upsert did and how many it quarantined.
    partitions: dict[str, tuple[StoreResult, int]] = field(default_factory=dict)

    def step_fields(self) -> dict[str, Any]:
        """The step's `sync_step_metrics` figures (its duration and pool waits beside them)."""
        return {
            "users": self.users,
            "activities": self.activities,
            "rows_written": self.total.saved + self.total.updated,
            "write_seconds": round(self.total.seconds, 3),
        }


def store_user(
    store: Store,
    run: Any,
    keys: Sequence[str],
    user: str,
    parts: Mapping[str, PartitionData],
    outcome: StoreOutcome,
    batch_size: int | None = None,
) -> None:
    """Upsert one user's rows and quarantine its invalid activities, month by month (each
    partition's figures go to `outcome.partitions`). The user's session ends `completed`, or
    `failed` when the database refused (`StoreFailed`)."""
    table = pa.concat_tables([p.activities for p in parts.values()])
    dates = table.column("start_date").to_pylist()
    tracker = tracker_for_run(
        store,
        run,
        user,
        time_range_start=min(dates, default=None),
        time_range_end=max(dates, default=None),
    )
    try:
        _store_user(store, keys, user, parts, outcome, table, tracker, batch_size)
    except StoreFailed:
        raise  # the session said why
    except Exception as exc:  # the database went away past the retries (checks, clean-up)
        error = classified(exc)
        fail_session(tracker, error)
        raise StoreFailed(
            f"storing runs for user {user} failed: {error.message}", retry_step=error.retryable
        ) from None


def _store_user(
    store: Store,
    keys: Sequence[str],
    user: str,
    parts: Mapping[str, PartitionData],
    outcome: StoreOutcome,
    table: pa.Table,
    tracker: SessionTracker,
    batch_size: int | None,
) -> None:
    tracker.enter(SyncState.STORING)
    mine, quarantined, by_key = StoreResult(), 0, {}
    key = None  # the batch being stored: a partition (the user's month)
    try:
        for key, part in parts.items():
            # The partition's Arrow table as it is; each row written names this session
            # (runs.sync_session_id).
            result = (
                store.upsert_runs_table(
                    part.activities, session_id=tracker.session.id, batch_size=batch_size
                )
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
            by_key[key] = (result, count)
    except Exception as exc:  # the database is down or refused the batch outright
        fail_session(
            tracker,
            ErrorInfo(
                type=ErrorType.DATABASE,
                retryable=True,
                message=f"storing runs failed: {classified(exc).message}",
                context=ErrorContext(batch_id=key),
            ),
        )
        raise StoreFailed(
            f"storing runs for user {user} failed: {type(exc).__name__}", retry_step=True
        ) from None
    invalid_count = sum(p.quarantine.num_rows for p in parts.values())
    shortfall = listing_shortfall(store, user, table, invalid_count, tracker.session)
    if shortfall is not None:
        # Loudly, and keeping the staged pages: the next sync starts from them. Not retried
        # in this run: the same rows would meet the same database.
        tracker.fail(shortfall.info())
        raise StoreFailed(str(shortfall), retry_step=False)
    listed = incremental.listings(tracker.session)
    spans = {s.id for s in sync_spans([k for k in keys if split_key(k)[0] == user])}
    for span_id in sorted(spans | {x["span"] for x in listed}):
        store.clear_staging(user, span_id)  # stored: a later sync lists Strava afresh
    # Stored and checked: the user's complete listings now vouch for what they returned.
    incremental.advance_watermark(store, user, tracker.session)
    tracker.complete(
        activities_stored=mine.saved,
        activities_updated=mine.updated,
        activities_skipped=mine.skipped,
        activities_failed=mine.failed + invalid_count,
    )
    outcome.total.add(mine)
    outcome.quarantined += quarantined
    outcome.partitions.update(by_key)


def store_partitions(
    keys: Sequence[str],
    data: Mapping[str, PartitionData],
    store: Store,
    run: Any,
    *,
    outcome: StoreOutcome | None = None,
    batch_size: int | None = None,
) -> StoreOutcome:
    """Store the run's enriched partitions (`data`: partition key -> its rows; `keys`: all the
    run's partition keys) user by user, `batch_size` rows per transaction (None: the store's);
    returns (and fills `outcome`, if given) the figures. `run` is the Dagster run (its id and
    tags name the sessions). Raises `StoreFailed` when a user's rows could not be stored,
    after that user's session has failed."""
    outcome = outcome if outcome is not None else StoreOutcome()
    users = by_user(data)
    outcome.users = len(users)
    outcome.activities = sum(
        p.activities.num_rows for parts in users.values() for p in parts.values()
    )
    for user, parts in users.items():
        store_user(store, run, keys, user, parts, outcome, batch_size)
    return outcome
