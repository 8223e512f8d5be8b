"""Fetching a run's partitions from Strava: the work behind `raw_strava_activities`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sync_assets.core import incremental
from sync_assets.core.clients.http import LatencyStats
from sync_assets.core.clients.strava import PAGE_SIZE, RequestStats, StravaClient
from sync_assets.core.errors import SyncError
from sync_assets.core.jsonsafe import unstorable
from sync_assets.core.models import (
    PartitionData,
    QuarantinedActivity,
    activities_table,
    activity_row,
    quarantine_table,
    validate_page,
)
from sync_assets.core.sessions import SessionTracker, SyncState
from sync_assets.core.storage.base import Store
from sync_assets.core.windows import SyncSpan, month_key, sync_spans, window_key


def minimum_list_calls(n_activities: int) -> int:
    """Fewest list requests that can prove a window holds `n_activities`: full pages + 1."""
    return n_activities // PAGE_SIZE + 1


@dataclass
class FetchReport:
    partitions: dict[str, PartitionData] = field(default_factory=dict)
    activities: int = 0
    quarantined: int = 0
    spans: int = 0
    list_calls: int = 0
    minimum_list_calls: int = 0
    token_calls: int = 0
    http_requests: int = 0
    retries: int = 0
    rate_limit_waits: int = 0
    resumed: int = 0  # activities taken from a checkpoint instead of Strava
    deleted_on_strava: int = 0  # stored rows a complete listing no longer returned
    partial_listings: int = 0  # spans listed incrementally (`sync_assets.core.incremental`)
    merged_from_store: int = 0  # their months' older rows, taken from the store
    rate_limit_usage: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    http_429: int = 0
    api_errors: int = 0  # failed attempts, classified (network, 5xx, 429, broken bodies, ...)
    latency: LatencyStats = field(default_factory=LatencyStats)
    notes: dict[str, list[str]] = field(default_factory=dict)  # user -> what the sync cannot see

    def add_client(self, stats: RequestStats, usage: dict[str, int]) -> None:
        """What one client spent (also when its listing failed half-way)."""
        self.list_calls += stats.list_calls
        self.token_calls += stats.token_calls
        self.http_requests += stats.http_requests
        self.retries += stats.retries
        self.rate_limit_waits += stats.rate_limit_waits
        self.http_429 += stats.http_429
        self.api_errors += sum(stats.errors_by_type.values())
        self.latency.samples_ms.extend(stats.latency.samples_ms)
        self.rate_limit_usage = usage


def _storable_json(records: list[Any]) -> str | None:
    """The page as JSON both databases accept, or None: a lone surrogate, NUL or NaN (the
    records holding them are quarantined) cannot be staged, so the page is not checkpointed."""
    if unstorable(records) is not None:
        return None
    return json.dumps(records, ensure_ascii=False)


def fetch_span(
    client: StravaClient,
    span: SyncSpan,
    tracker: SessionTracker | None = None,
    staging: Store | None = None,
) -> tuple[dict[str, PartitionData], int, int]:
    """All activities of one span, split into its month partitions.

    Returns (data, received, resumed): activities received in this listing (resumed ones
    included) and how many came from a checkpoint instead of Strava. With `staging`, every page
    is kept until the span's rows are stored (`runs_table` clears it), so a sync killed while
    fetching, enriching or storing resumes after the last page it had (at most the page in
    flight, or the closing empty page, is fetched again), moving the same bound in the same
    order; with a tracker, every page is also checkpointed in `sync_sessions` (page number,
    listing cursor: both bounds, the order and the bound that moves) with the progress.
    """
    fetched_at = datetime.now(UTC).replace(microsecond=0)
    rows: list[dict[str, Any]] = []
    quarantine: dict[str, list[QuarantinedActivity]] = {m: [] for m in span.months}
    received = resumed = 0
    span_id = span.id
    staged = staging.staged_pages(span.user_id, span_id) if staging else []

    def take(records: list[Any]) -> None:
        batch = validate_page(records)
        for activity, payload in batch.activities:
            if month_key(activity.start_date) in quarantine:
                rows.append(activity_row(span.user_id, activity, payload, fetched_at))
            else:  # Strava returned something outside the window we asked for: keep it aside
                quarantine[span.months[0]].append(
                    QuarantinedActivity(
                        activity.id,
                        f"start_date {activity.start_date.isoformat()} is outside the "
                        f"requested window {span.list_start.date()}..{span.end.date()}",
                        payload,
                    )
                )
        # A record we could not parse has no trustworthy month: it waits in the span's first.
        quarantine[span.months[0]].extend(batch.quarantined)

    seen: set[int] = set()
    for page in staged:
        records = json.loads(page.records)
        seen.update(
            r["id"] for r in records if isinstance(r, dict) and isinstance(r.get("id"), int)
        )
        take(records)
        resumed += len(records)
    received = resumed
    pages = client.iter_activity_pages(
        span.list_start,
        span.end,
        cursor=staged[-1].cursor if staged else None,
        first_page=staged[-1].page + 1 if staged else 1,
        seen=seen,
    )
    for page in pages:
        received += len(page.records)
        take(page.records)
        records = _storable_json(page.records) if staging is not None else None
        if records is None:
            staging = None  # resume needs every page: later ones are not staged either
        else:
            staging.stage_page(span.user_id, span_id, page.number, page.cursor, records)
        if tracker is not None:
            failed = sum(len(q) for q in quarantine.values())
            # Until the listing ends, a full page promises (at least) one more.
            more = PAGE_SIZE if page.received >= PAGE_SIZE else 0
            tracker.checkpoint(
                page.number,
                {
                    "cursor": page.cursor.position,  # the value of the bound that moves
                    "listing": page.cursor.as_dict(),
                    "window": [span.list_start.isoformat(), span.end.isoformat()],
                    "resumed_activities": resumed,
                },
                processed=received,
                errors=failed,
                activities_fetched=received,
                activities_failed=failed,
                total_activities_estimated=received + more,
            )
    rows.sort(key=lambda r: (r["start_date"], r["strava_id"]))
    table = activities_table(rows)  # one conversion for the span, then cheap slices per month
    # Rows are sorted by start, so each month is one contiguous slice (zero-copy).
    first: dict[str, int] = {}
    count: dict[str, int] = dict.fromkeys(span.months, 0)
    for i, row in enumerate(rows):
        month = month_key(row["start_date"])
        first.setdefault(month, i)
        count[month] += 1
    data = {
        window_key(span.user_id, m): PartitionData(
            table.slice(first.get(m, 0), count[m]),
            quarantine_table(span.user_id, quarantine[m], fetched_at),
        )
        for m in span.months
    }
    return data, received, resumed


def forget_unlisted(
    store: Store, span: SyncSpan, data: dict[str, PartitionData], listed_at: datetime
) -> int:
    """Delete the span's stored rows that its complete listing did not return: deleted on
    Strava (or hidden from this app) even when no push event said so. Not when a record
    came without an id: it may be one of those rows."""
    listed: list[int] = []
    for part in data.values():
        listed += part.activities.column("strava_id").to_pylist()
        quarantined = part.quarantine.column("strava_id").to_pylist()
        if any(i is None for i in quarantined):
            return 0
        listed += quarantined
    return store.delete_unlisted_runs(span.user_id, span.start, span.end, listed, listed_at)


def fetch_partitions(
    client_for: Callable[[str], StravaClient],
    keys: Sequence[str],
    tracker_for: Callable[[str, datetime, datetime], SessionTracker] | None = None,
    staging: Store | None = None,
    report: FetchReport | None = None,
    rule: incremental.Incremental | None = None,
) -> FetchReport:
    """Fetch every partition in `keys` with one paginated query per user and block of months.

    `client_for(user_id)` returns a `StravaClient` (a context manager); `tracker_for(user_id,
    time_range_start, time_range_end)` the user's `sync_sessions` tracker, if sessions are kept
    (its `total_activities_estimated` is the activities listed once the listing is done). With a
    store (`staging`), pages are checkpointed there and stored rows that a complete listing no
    longer returns are deleted. Pass `report` to keep what was spent when the fetch fails.
    With an incremental `rule` and a store, a span may be listed from the user's watermark
    only, its months completed from the store (`sync_assets.core.incremental`); each span's
    listing is recorded in the session (`checkpoint_data.listings`) for the store step.
    """
    started = time.perf_counter()
    report = report if report is not None else FetchReport()
    spans = sync_spans(keys)
    trackers: dict[str, SessionTracker] = {}
    listings: dict[str, list[dict[str, Any]]] = {}
    if tracker_for is not None:
        for user in sorted({s.user_id for s in spans}):
            mine = [s for s in spans if s.user_id == user]
            trackers[user] = tracker_for(user, mine[0].start, mine[-1].end)
            trackers[user].enter(SyncState.FETCHING)
    for span in spans:
        tracker = trackers.get(span.user_id)
        how = incremental.plan(staging, span, rule, datetime.now(UTC)) if staging else None
        span = how.span if how is not None else span
        with client_for(span.user_id) as client:
            listed_at = datetime.now(UTC)
            try:
                for note in client.scope_notes():
                    report.notes.setdefault(span.user_id, [])
                    if note not in report.notes[span.user_id]:
                        report.notes[span.user_id].append(note)
                    if tracker is not None:
                        tracker.note(note)
                data, received, resumed = fetch_span(client, span, tracker, staging)
            except SyncError as err:
                if tracker is not None:
                    tracker.fail(err.info())
                raise
            finally:
                report.add_client(client.stats, client.budget.usage())
                report.seconds = time.perf_counter() - started
            if staging is not None and not resumed and not span.partial:
                # One uninterrupted listing: what it did not return is gone from Strava.
                report.deleted_on_strava += forget_unlisted(staging, span, data, listed_at)
            merged = 0
            if how is not None:
                data, merged = incremental.merge_stored(how, data)
            report.partial_listings += span.partial
            report.merged_from_store += merged
            listings.setdefault(span.user_id, []).append(
                incremental.listing_record(span, listed_at, resumed, merged)
            )
            report.partitions.update(data)
            report.spans += 1
            report.resumed += resumed
            # What remained to fetch after the checkpoint, at 200 per page (+1 closing page).
            report.minimum_list_calls += minimum_list_calls(received - resumed)
    for part in report.partitions.values():
        report.activities += part.activities.num_rows
        report.quarantined += part.quarantine.num_rows
    for user, tracker in trackers.items():
        tracker.progress(
            tracker.session.activities_fetched,
            tracker.session.activities_fetched,
            tracker.session.activities_failed,
            force=True,
            total_activities_estimated=tracker.session.activities_fetched,
            checkpoint_data={**tracker.session.checkpoint_data, "listings": listings.get(user, [])},
        )
    report.seconds = time.perf_counter() - started
    return report
