"""Fetching a run's partitions from Strava: the work behind `raw_strava_activities`.

Memory stays flat whatever the history: each page is validated as it arrives, its rows wait in
the month they belong to, and a month goes to a `PartitionSink` (and leaves memory) as soon as
the listing has moved past it; the run keeps counts and the listed ids, not the rows.
"""

from __future__ import annotations

import json
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sync_assets.core import incremental
from sync_assets.core.clients.http import LatencyStats
from sync_assets.core.clients.strava import PAGE_SIZE, RequestStats, StravaClient
from sync_assets.core.clients.strava_listing import ListCursor
from sync_assets.core.errors import ErrorType, SyncError
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
from sync_assets.core.steps import fail_session
from sync_assets.core.storage.base import Store
from sync_assets.core.windows import SyncSpan, month_key, next_month, sync_spans, window_key


def minimum_list_calls(n_activities: int) -> int:
    """Fewest list requests that can prove a window holds `n_activities`: full pages + 1."""
    return n_activities // PAGE_SIZE + 1


@dataclass(frozen=True)
class PartitionCounts:
    """What one written partition holds, without its rows: the run's per-partition figures."""

    activities: int
    quarantined: int


class PartitionSink(Protocol):
    """Where the fetch hands each month of a span once the listing is past it.

    `write` is called once per partition key, as soon as that month is complete (in the order
    the listing completes them; the span's first month only when the listing ends); the fetch
    drops the rows after it. A failure raises and fails the fetch: months written before stay
    written, the session fails and the staged pages stay for the resume. A sink that merges
    the new rows into what a month already holds (an incremental listing) fits the same call.
    """

    def write(self, key: str, data: PartitionData) -> None: ...


@dataclass
class CollectedPartitions:
    """A sink that keeps every partition in memory (tests, benchmarks, and an IO manager that
    only takes whole tables): memory then grows with the history again."""

    partitions: dict[str, PartitionData] = field(default_factory=dict)

    def write(self, key: str, data: PartitionData) -> None:
        self.partitions[key] = data


@dataclass
class FetchReport:
    partitions: dict[str, PartitionCounts] = field(default_factory=dict)  # as written
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
    # The seed's FetchResponse.metadata: every record the listings' pages carried (resumed
    # pages included), the repeats of an already listed one dropped, and those set aside in
    # quarantine (malformed, or outside the window asked for).
    total_fetched: int = 0
    duplicates_skipped: int = 0
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


def listing_passed(start: int, end: int, cursor: ListCursor) -> bool:
    """Whether a listing continuing at `cursor` can return nothing more in `[start, end)`
    (epoch seconds): oldest first, every later start is after `cursor.after` (so a month
    ending at `after` + 1 waits a page longer: a start at `after` + 0.5 s is still listed);
    newest first, before `cursor.before`. While the order is unknown, any start may come."""
    if cursor.order == "ascending":
        return end <= cursor.after
    if cursor.order == "descending":
        return start >= cursor.before
    return False


# Completes a month of a partial listing before it is written (`incremental.StoredMerge`).
MonthMerge = Callable[[str, PartitionData], PartitionData]


class MonthAssembler:
    """One span's months while its listing runs: each page's rows wait in their month, and a
    month goes to the sink (and leaves memory) once the listing has moved past it.

    Quarantined records and records outside the span's window wait in the span's first month
    (a record we could not parse has no trustworthy month), so that month is written last,
    with the rest, by `finish`. Only the listed ids (ints) are kept for the whole span: what
    `forget_unlisted` needs. Where the pages come from (a resume, the live listing, another
    kind of listing) is the caller's business: `take` each page, then `settle` at its cursor.
    """

    def __init__(
        self,
        span: SyncSpan,
        sink: PartitionSink,
        fetched_at: datetime,
        merge: MonthMerge | None = None,
    ) -> None:
        self.span = span
        self.sink = sink
        self.merge = merge
        self.fetched_at = fetched_at
        self._bounds: dict[str, tuple[int, int]] = {}
        for month in span.months:
            start = datetime.strptime(month, "%Y-%m-%d").replace(tzinfo=UTC)
            self._bounds[month] = (int(start.timestamp()), int(next_month(start).timestamp()))
        self._rows: dict[str, list[dict[str, Any]]] = {m: [] for m in span.months}  # open ones
        self._quarantine: dict[str, list[QuarantinedActivity]] = {m: [] for m in span.months}
        self.written: dict[str, PartitionCounts] = {}  # by partition key
        self.listed = array("q")  # every id listed (accepted or quarantined)
        self.unidentified = False  # a quarantined record came without a usable id
        self.quarantined = 0

    @property
    def held(self) -> int:
        """Accepted rows waiting in open months: what the fetch holds besides one page."""
        return sum(len(rows) for rows in self._rows.values())

    def take(self, records: list[Any]) -> None:
        """Validate one page and put its rows in their months.

        Raises a retryable INVALID_RESPONSE for an activity of a month already written: the
        listing's bounds had excluded it, so Strava broke them and may have left out others.
        Raised before the page is staged, so a retry asks Strava for that page again."""
        first = self.span.months[0]
        batch = validate_page(records)
        for activity, payload in batch.activities:
            month = month_key(activity.start_date)
            rows = self._rows.get(month)
            if rows is not None:
                rows.append(activity_row(self.span.user_id, activity, payload, self.fetched_at))
            elif month in self._bounds:
                raise SyncError(
                    ErrorType.INVALID_RESPONSE,
                    f"GET /athlete/activities listed activity {activity.id} (start_date "
                    f"{activity.start_date.isoformat()}) after the listing had moved past "
                    f"{month}, whose partition is written; not guessing what else it left out",
                    retryable=True,
                )
            else:  # Strava returned something outside the window we asked for: keep it aside
                self._quarantine[first].append(
                    QuarantinedActivity(
                        activity.id,
                        f"start_date {activity.start_date.isoformat()} is outside the "
                        f"requested window {self.span.list_start.date()}..{self.span.end.date()}",
                        payload,
                    )
                )
                self.quarantined += 1
        self._quarantine[first].extend(batch.quarantined)
        self.quarantined += len(batch.quarantined)

    def settle(self, cursor: ListCursor) -> None:
        """Write every month (but the first) that the listing, continuing at `cursor`, has
        moved past."""
        first = self.span.months[0]
        for month in [m for m in self._rows if m != first]:
            if listing_passed(*self._bounds[month], cursor):
                self._write(month)

    def finish(self) -> dict[str, PartitionCounts]:
        """The listing is complete: write the months still open; every month's counts."""
        for month in list(self._rows):
            self._write(month)
        return self.written

    def _write(self, month: str) -> None:
        rows = self._rows.pop(month)
        quarantine = self._quarantine.pop(month)
        rows.sort(key=lambda r: (r["start_date"], r["strava_id"]))
        data = PartitionData(
            activities_table(rows), quarantine_table(self.span.user_id, quarantine, self.fetched_at)
        )
        del rows
        self.listed.extend(data.activities.column("strava_id").to_pylist())
        for q in quarantine:
            if q.activity_id is None:
                self.unidentified = True
            else:
                self.listed.append(q.activity_id)
        if self.merge is not None:  # a partial listing: the month's other rows are stored ones
            data = self.merge(month, data)
        key = window_key(self.span.user_id, month)
        self.sink.write(key, data)
        self.written[key] = PartitionCounts(data.activities.num_rows, data.quarantine.num_rows)


@dataclass
class SpanFetch:
    """What one span's listing left once its months were written: no rows."""

    partitions: dict[str, PartitionCounts]
    received: int  # activities received in this listing, resumed ones included
    resumed: int  # of which from a checkpoint instead of Strava
    duplicates: int  # records of Strava's pages dropped as repeats of one already listed
    listed: Sequence[int]  # the ids listed, accepted or quarantined
    unidentified: bool  # a quarantined record had no id: `listed` may lack a stored row's


def fetch_span(
    client: StravaClient,
    span: SyncSpan,
    sink: PartitionSink,
    tracker: SessionTracker | None = None,
    staging: Store | None = None,
    merge: MonthMerge | None = None,
    owner: str | None = None,
) -> SpanFetch:
    """All activities of one span, handed to `sink` month by month as the listing completes
    them (`MonthAssembler`).

    With `staging`, every page is kept until the span's rows are stored (`runs_table` clears
    it), so a sync killed while fetching, enriching or storing resumes after the last page it
    had (at most the page in flight, or the closing empty page, is fetched again), moving the
    same bound in the same order; the staged pages are read back a few at a time, and only
    while they run 1, 2, 3, ... (pages past a gap or an expired first page are dropped and
    listed again). With a tracker, every page is also checkpointed in `sync_sessions` (page
    number, listing cursor: both bounds, the order and the bound that moves) with the progress.

    With `owner` (the run's id, holding the user: `core.leases`), the pages are the owner's:
    staged only while it holds the user, and a resume first adopts the span's pages, which it
    can only while it holds the user, so never while the run that staged them is still
    listing (that run would hold the user; a run whose heartbeat stopped has lost it, and its
    next page is refused). A run resumes only from pages of a run that is no longer working.
    """
    months = MonthAssembler(span, sink, datetime.now(UTC).replace(microsecond=0), merge)
    received = resumed = duplicates = 0
    span_id = span.id
    seen: set[int] = set()
    last_page, cursor = 0, None
    if staging is not None:
        if owner is not None:
            staging.adopt_staging(span.user_id, span_id, owner)
        for page in staging.iter_staged_pages(span.user_id, span_id):
            if page.page != last_page + 1:
                break  # a resume needs every page before the cursor it continues from
            records = json.loads(page.records)
            seen.update(
                r["id"] for r in records if isinstance(r, dict) and isinstance(r.get("id"), int)
            )
            months.take(records)
            months.settle(page.cursor)
            resumed += len(records)
            last_page, cursor = page.page, page.cursor
        # What lies past the resume point is listed again: no stale page may follow it later.
        staging.clear_staging(span.user_id, span_id, after_page=last_page)
    received = resumed
    pages = client.iter_activity_pages(
        span.list_start, span.end, cursor=cursor, first_page=last_page + 1, seen=seen
    )
    for page in pages:
        received += len(page.records)
        duplicates += page.received - len(page.records)
        months.take(page.records)
        records = _storable_json(page.records) if staging is not None else None
        if records is None:
            staging = None  # resume needs every page: later ones are not staged either
        else:
            staging.stage_page(
                span.user_id, span_id, page.number, page.cursor, records, run_id=owner
            )
        if tracker is not None:
            failed = months.quarantined
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
        months.settle(page.cursor)
    partitions = months.finish()
    return SpanFetch(partitions, received, resumed, duplicates, months.listed, months.unidentified)


def forget_unlisted(store: Store, span: SyncSpan, fetched: SpanFetch, listed_at: datetime) -> int:
    """Delete the span's stored rows that its complete listing did not return: deleted on
    Strava (or hidden from this app) even when no push event said so. Not when a record
    came without an id: it may be one of those rows."""
    if fetched.unidentified:
        return 0
    return store.delete_unlisted_runs(
        span.user_id, span.start, span.end, list(fetched.listed), listed_at
    )


def fetch_partitions(
    client_for: Callable[[str], StravaClient],
    keys: Sequence[str],
    tracker_for: Callable[[str, datetime, datetime], SessionTracker] | None = None,
    staging: Store | None = None,
    report: FetchReport | None = None,
    rule: incremental.Incremental | None = None,
    *,
    sink: PartitionSink,
    owner: str | None = None,
) -> FetchReport:
    """Fetch every partition in `keys` with one paginated query per user and block of months,
    each month handed to `sink` as soon as its listing is past it (`fetch_span`).

    `client_for(user_id)` returns a `StravaClient` (a context manager); `tracker_for(user_id,
    time_range_start, time_range_end)` the user's `sync_sessions` tracker, if sessions are kept
    (its `total_activities_estimated` is the activities listed once the listing is done). With a
    store (`staging`), pages are checkpointed there and stored rows that a complete listing no
    longer returns are deleted. Pass `report` to keep what was spent when the fetch fails;
    `report.partitions` holds the counts of what was written (the rows are the sink's).
    With an incremental `rule` and a store, a span may be listed from the user's watermark
    only, its months completed from the store as they are written
    (`sync_assets.core.incremental`); each span's listing is recorded in the session
    (`checkpoint_data.listings`) for the store step. `owner`: the run holding the users,
    whose staged pages these are (`fetch_span`).
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
        merge = incremental.StoredMerge(how) if how is not None and span.partial else None
        with client_for(span.user_id) as client:
            listed_at = datetime.now(UTC)
            try:
                for note in client.scope_notes():
                    report.notes.setdefault(span.user_id, [])
                    if note not in report.notes[span.user_id]:
                        report.notes[span.user_id].append(note)
                    if tracker is not None:
                        tracker.note(note)
                fetched = fetch_span(client, span, sink, tracker, staging, merge, owner)
            except SyncError as err:
                if tracker is not None:
                    fail_session(tracker, err.info())
                raise
            finally:
                report.add_client(client.stats, client.budget.usage())
                report.seconds = time.perf_counter() - started
            if staging is not None and not fetched.resumed and not span.partial:
                # One uninterrupted listing: what it did not return is gone from Strava.
                report.deleted_on_strava += forget_unlisted(staging, span, fetched, listed_at)
            merged = merge.merged if merge is not None else 0
            report.partial_listings += span.partial
            report.merged_from_store += merged
            listings.setdefault(span.user_id, []).append(
                incremental.listing_record(span, listed_at, fetched.resumed, merged)
            )
            report.partitions.update(fetched.partitions)
            report.spans += 1
            report.resumed += fetched.resumed
            report.total_fetched += fetched.received + fetched.duplicates
            report.duplicates_skipped += fetched.duplicates
            # What remained to fetch after the checkpoint, at 200 per page (+1 closing page).
            report.minimum_list_calls += minimum_list_calls(fetched.received - fetched.resumed)
    for part in report.partitions.values():
        report.activities += part.activities
        report.quarantined += part.quarantined
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
