"""Incremental syncs through the asset job against the sandbox: one list request since the
user's watermark, merged into the stored months (`sync_assets.core.incremental`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, instance_for_test
from sync_assets_sandbox import StravaSandbox

from sync_assets.core.incremental import Incremental, listing_start, policy
from sync_assets.core.sessions import SYNC_TYPE_TAG
from sync_assets.core.steps.store import listing_shortfall
from sync_assets.core.storage import ListingWatermark, Store, close_stores, open_store
from sync_assets.core.windows import SyncSpan, month_key, month_start
from sync_assets.partitions import USERS_PARTITIONS_NAME

from .helpers import connect_user, make_resources, run_metadata, sync_range

LISTS = "/api/v3/athlete/activities"
LOOKBACK = timedelta(hours=72)  # SYNC_ASSETS_INCREMENTAL_LOOKBACK_HOURS' default
INCREMENTAL = {SYNC_TYPE_TAG: "incremental"}


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


def start_of(activity: dict) -> datetime:
    return datetime.fromisoformat(activity["start_date"])


class World:
    """One sandbox athlete connected to a store, whose last two months hold `in_months`
    activities besides its history, and the job's resources; the runs the tests make."""

    def __init__(
        self,
        sandbox: StravaSandbox,
        server: object,
        instance: DagsterInstance,
        tmp_path: Path,
        url: str | None,
        data_dir: Path,
        in_months: int,
    ) -> None:
        self.sandbox, self.instance, self.tmp_path = sandbox, instance, tmp_path
        self.store: Store = open_store(url, data_dir)
        self.resources = make_resources(sandbox, server, tmp_path, url, data_dir)
        self.now = datetime.fromtimestamp(int(sandbox.now()), UTC)
        # The run covers the previous month and this one (as the schedule's does early in a
        # month): the watermark's lookback always falls inside it.
        self.span_start = month_start(month_start(self.now) - timedelta(days=1))
        self.prev, self.cur = month_key(self.span_start), month_key(self.now)
        self.user, self.athlete = connect_user(self.store, sandbox, url, 60, years=1.0)
        instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [self.user])
        # Older activities of the months: before the last four days, out of the lookback.
        step = (self.now - timedelta(days=4) - self.span_start) / in_months
        for i in range(in_months):
            sandbox.add_activity(self.aid, start_date=self.span_start + step * i)

    @property
    def aid(self) -> int:
        return self.athlete.athlete_id

    def truth(self) -> list[dict]:
        return self.sandbox.activities(self.aid)

    def in_span(self, since: datetime | None = None) -> list[dict]:
        return [a for a in self.truth() if start_of(a) >= (since or self.span_start)]

    def sync(self, first: str, last: str, **tags: str) -> int:
        """One run of the three assets; the list requests it made."""
        self.sandbox.clear_requests()
        result = sync_range(self.instance, self.resources, self.user, first, last, **tags)
        assert result.success
        self.last = result
        return self.sandbox.request_count(kind="api", path_prefix=LISTS)

    def full_sync(self) -> ListingWatermark:
        """The user's first sync: the whole history, listed in full (a backfill)."""
        self.sync(month_key(start_of(self.truth()[0])), self.cur)
        watermark = self.store.listing_watermark(self.user)
        assert watermark is not None
        return watermark

    def incremental(self) -> int:
        return self.sync(self.prev, self.cur, **INCREMENTAL)

    def parquet_ids(self, month: str) -> list[int]:
        path = self.tmp_path / "parquet" / "raw_strava_activities" / month / self.user
        return pq.read_table(path / "activities.parquet").column("strava_id").to_pylist()

    def month_ids(self, activities: list[dict], month: str) -> list[int]:
        return sorted(a["id"] for a in activities if month_key(start_of(a)) == month)

    def session(self, sync_type: str):  # noqa: ANN201 - SessionRecord
        return next(s for s in self.store.recent_sessions(self.user) if s.sync_type == sync_type)


@pytest.fixture
def world(sandbox, server, instance, tmp_path) -> Iterator[object]:
    """A World on the embedded store, its months holding 450 activities (3 pages)."""

    def make(url: str | None = None, data_dir: Path | None = None, in_months: int = 450) -> World:
        return World(
            sandbox, server, instance, tmp_path, url, data_dir or tmp_path / "data", in_months
        )

    yield make
    close_stores()


def test_an_incremental_run_lists_once_and_merges_into_the_stored_months(backend, world) -> None:
    url, data_dir = backend
    w = world(url, data_dir)
    before = w.full_sync()
    assert len(w.in_span()) > 400  # listing the two months whole takes 3 requests
    # Since then: three uploads, and an old activity deleted on Strava without a push event.
    new = [w.sandbox.add_activity(w.aid, start_date=w.now - timedelta(hours=h)) for h in (1, 2, 3)]
    held = w.truth()
    since = before.listed_through - LOOKBACK
    old = next(a for a in w.in_span() if start_of(a) < since)
    w.sandbox.delete_activity(w.aid, old["id"])

    assert w.incremental() == 1
    assert w.sandbox.request_count(kind="oauth") == 0  # the token is not due yet
    ids = set(w.store.run_ids(w.user))
    assert {a["id"] for a in new} <= ids
    # The months' older activities stay, the one the partial listing did not return too
    # (a partial listing deletes nothing: the next whole listing of the month will).
    assert {a["id"] for a in held} <= ids and old["id"] in ids
    # Each month's partition holds the whole month, not only what the listing returned.
    for month in (w.prev, w.cur):
        assert sorted(w.parquet_ids(month)) == w.month_ids(held, month)
    session = w.session("incremental")
    assert session.status == "completed"
    listed = w.in_span(since)
    assert session.activities_fetched == session.total_activities_estimated == len(listed)
    assert session.activities_stored == 3
    assert session.activities_updated == 0  # the merged rows come back exactly as stored
    after = w.store.listing_watermark(w.user)
    assert after is not None
    assert after.listed_from == before.listed_from and after.listed_through > before.listed_through
    fetch = run_metadata(w.last, "raw_strava_activities")
    assert fetch["incremental_listings"] == 1
    assert fetch["merged_from_store"] == len([a for a in held if start_of(a) >= w.span_start]) - (
        len(listed)
    )
    assert fetch["list_requests"] == fetch["list_requests_minimum"] == 1

    # The safety net counts the merged rows: one of them missing from the store step's rows
    # is a shortfall, though every listed activity is there.
    enriched = w.tmp_path / "parquet" / "weather_enriched_activities"
    tables = [
        pq.read_table(enriched / m / w.user / "activities.parquet").select(["strava_id"])
        for m in (w.prev, w.cur)
    ]
    table = pa.concat_tables(tables)
    assert listing_shortfall(w.store, w.user, table, 0, session) is None
    assert old["id"] in table.column("strava_id").to_pylist()  # merged from the store
    short = table.filter(pc.not_equal(table.column("strava_id"), old["id"]))
    error = listing_shortfall(w.store, w.user, short, 0, session)
    assert error is not None and "came from the store" in str(error)


def test_a_late_upload_within_the_lookback_is_found(world) -> None:
    w = world()
    before = w.full_sync()
    # A watch synced two days late: its start is before the watermark, inside the lookback.
    late = w.sandbox.add_activity(w.aid, start_date=before.listed_through - timedelta(hours=48))
    assert w.incremental() == 1
    assert late["id"] in w.store.run_ids(w.user)
    assert late["id"] in w.parquet_ids(month_key(start_of(late)))


def test_without_a_watermark_the_months_are_listed_whole(world) -> None:
    w = world()
    # The user's first sync is the schedule's: nothing says what is stored, so all is listed.
    whole = len(w.in_span()) // 200 + 1
    assert whole >= 3
    assert w.incremental() == whole
    assert sorted(w.store.run_ids(w.user)) == sorted(a["id"] for a in w.in_span())
    assert w.store.listing_watermark(w.user) is not None
    w.sandbox.add_activity(w.aid, start_date=w.now - timedelta(hours=1))
    assert w.incremental() == 1  # from now on, what is new only
    assert sorted(w.store.run_ids(w.user)) == sorted(a["id"] for a in w.in_span())


def test_a_month_that_ended_since_the_watermark_is_listed_whole_once(world) -> None:
    w = world()
    # Stored by a sync of the previous month alone (a window that ended: no watermark), then a
    # watermark from when that month was in progress, as the last daily sync would have left.
    w.sync(month_key(start_of(w.truth()[0])), w.prev)
    assert w.store.listing_watermark(w.user) is None
    first = month_start(start_of(w.truth()[0]))
    w.store.advance_listing_watermark(
        w.user, ListingWatermark(first, w.span_start + timedelta(days=10))
    )
    # Uploaded now, started early in the previous month: older than any lookback.
    late = w.sandbox.add_activity(w.aid, start_date=w.span_start + timedelta(days=2))
    assert w.incremental() == len(w.in_span()) // 200 + 1  # the ended month, whole
    assert late["id"] in w.store.run_ids(w.user)
    assert sorted(w.store.run_ids(w.user)) == sorted(a["id"] for a in w.truth())
    assert w.store.listing_watermark(w.user).listed_through >= w.now


def test_a_full_page_of_new_activities_pages_on(world) -> None:
    w = world(in_months=150)
    before = w.full_sync()
    for i in range(250):  # a bulk import of the last hours
        w.sandbox.add_activity(w.aid, start_date=w.now - timedelta(minutes=5 + i))
    listed = w.in_span(before.listed_through - LOOKBACK)
    assert len(listed) >= 250
    assert w.incremental() == len(listed) // 200 + 1
    assert sorted(w.store.run_ids(w.user)) == sorted(a["id"] for a in w.truth())
    assert w.session("incremental").activities_fetched == len(listed)


# -- the rules, without I/O -------------------------------------------------------------------
def test_where_an_incremental_listing_starts() -> None:
    span = SyncSpan("u", ("2026-10-01", "2026-11-01"))
    rule = Incremental(LOOKBACK)
    now = datetime(2026, 11, 20, 6, tzinfo=UTC)
    mark = ListingWatermark(datetime(2009, 1, 1, tzinfo=UTC), now - timedelta(days=1))
    assert listing_start(span, mark, now, rule) == mark.listed_through - LOOKBACK
    assert listing_start(span, None, now, rule) is None  # no watermark
    late = ListingWatermark(datetime(2026, 10, 5, tzinfo=UTC), mark.listed_through)
    assert listing_start(span, late, now, rule) is None  # not listed from the span's start
    ended = ListingWatermark(mark.listed_from, datetime(2026, 10, 30, tzinfo=UTC))
    assert listing_start(span, ended, now, rule) is None  # October ended since
    old = ListingWatermark(mark.listed_from, datetime(2026, 10, 2, tzinfo=UTC))
    assert listing_start(SyncSpan("u", ("2026-10-01",)), old, old.listed_through, rule) is None
    # A push event's activity older than the lookback: the listing reaches back to it.
    event = datetime(2026, 10, 12, 7, 30, 15, 999, tzinfo=UTC)
    assert listing_start(span, mark, now, Incremental(LOOKBACK, event)) == event.replace(
        microsecond=0
    )
    # Which runs may list incrementally at all.
    assert policy({SYNC_TYPE_TAG: "incremental"}, LOOKBACK) == rule
    assert policy({SYNC_TYPE_TAG: "backfill"}, LOOKBACK) is None
    assert policy({SYNC_TYPE_TAG: "webhook"}, LOOKBACK) is None  # no start named: whole
    tags = {SYNC_TYPE_TAG: "webhook", "sync_assets/list_from": event.isoformat()}
    assert policy(tags, LOOKBACK) == Incremental(LOOKBACK, event)
