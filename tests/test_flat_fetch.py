"""Flat memory: a fetch writes each month as soon as the listing is past it and keeps none.

Real parts: the sandbox over HTTP, the real client, the embedded store's staging and the
Parquet IO manager's sink. What is checked is structure (when a month is written, what the
fetch still holds), never a size or a time: `bench/bench_fetch.py` prints the peaks.
"""

from __future__ import annotations

import json
import sqlite3
import weakref
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey
from upath import UPath

from sync_assets.core import ingest
from sync_assets.core.clients.strava import PAGE_SIZE
from sync_assets.core.clients.strava_listing import ListCursor
from sync_assets.core.errors import ErrorType, SyncError
from sync_assets.core.ingest import (
    CollectedPartitions,
    MonthAssembler,
    PartitionCounts,
    fetch_partitions,
    fetch_span,
)
from sync_assets.core.models import PartitionData
from sync_assets.core.windows import SyncSpan, month_key, next_month, split_key
from sync_assets.resources.parquet_io import (
    ACTIVITIES_FILE,
    ParquetPartitionSink,
    PartitionedParquetIOManager,
)

from .helpers import LIST_ORDERS

LISTS = "/api/v3/athlete/activities"
ASSET = AssetKey("raw_strava_activities")
N = 1500  # 8 pages over 4 years: about 31 activities a month


def history(sandbox, user: str, athlete) -> SyncSpan:
    """The user's span from the athlete's first month to the sandbox's current one."""
    first = datetime.fromisoformat(sandbox.activities(athlete.athlete_id)[0]["start_date"])
    month, months = first.replace(day=1, hour=0, minute=0, second=0, microsecond=0), []
    now = datetime.fromtimestamp(sandbox.now(), UTC)
    while month <= now:
        months.append(month.strftime("%Y-%m-%d"))
        month = next_month(month)
    return SyncSpan(user, tuple(months))


def records(page) -> int:
    return len(json.loads(page.records))


def truth_by_month(sandbox, athlete) -> dict[str, list[int]]:
    by: dict[str, list[int]] = {}
    for a in sandbox.activities(athlete.athlete_id):
        by.setdefault(month_key(datetime.fromisoformat(a["start_date"])), []).append(a["id"])
    return by


class RecordingSink:
    """The Parquet sink, watched: for each write, the list requests Strava had answered, the
    file read back, and whether the months handed over before are still alive anywhere."""

    def __init__(self, sandbox, base: Path) -> None:
        self.sandbox = sandbox
        self.parquet = ParquetPartitionSink(PartitionedParquetIOManager(UPath(base)), ASSET)
        self.writes: list[tuple[str, int, list[int]]] = []
        self.earlier: list[weakref.ref] = []
        self.kept_alive: list[str] = []

    def write(self, key: str, data: PartitionData) -> None:
        self.kept_alive += [key for ref in self.earlier if ref() is not None]
        self.parquet.write(key, data)
        path = self.parquet.io_manager.partition_path(ASSET, key) / ACTIVITIES_FILE
        ids = pq.read_table(str(path)).column("strava_id").to_pylist()
        lists = self.sandbox.request_count(kind="api", path_prefix=LISTS)
        self.writes.append((key, lists, ids))
        self.earlier.append(weakref.ref(data))


@pytest.fixture
def held(monkeypatch) -> list[int]:
    """The rows the fetch holds in open months after each page (a spy on `MonthAssembler`)."""
    seen: list[int] = []

    class Spy(MonthAssembler):
        def settle(self, cursor: ListCursor) -> None:
            super().settle(cursor)
            seen.append(self.held)

    monkeypatch.setattr(ingest, "MonthAssembler", Spy)
    return seen


@pytest.mark.parametrize("list_order", LIST_ORDERS)
def test_months_are_written_while_the_listing_runs_and_are_not_kept(
    list_order, sandbox, connect_athlete, make_client, token_store, tmp_path, held
) -> None:
    user, athlete = connect_athlete(N, years=4.0)
    span = history(sandbox, user, athlete)
    truth = truth_by_month(sandbox, athlete)
    sink = RecordingSink(sandbox, tmp_path / "parquet")
    client = make_client(user)
    report = fetch_partitions(
        lambda _u: client, span.partition_keys(), staging=token_store, sink=sink
    )
    total_lists = sandbox.request_count(kind="api", path_prefix=LISTS)
    assert total_lists == N // PAGE_SIZE + 1

    keys = [k for k, _, _ in sink.writes]
    assert sorted(keys) == sorted(span.partition_keys())  # every month, once
    # Months were on disk while Strava still had pages to answer, each already whole.
    early = [(k, ids) for k, lists, ids in sink.writes if lists < total_lists]
    assert sum(len(ids) for _, ids in early) > N // 2, [(k, n) for k, n, _ in sink.writes]
    for key, ids in early:
        assert sorted(ids) == sorted(truth.get(split_key(key)[1], []))
    # Nothing handed over is held by the fetch afterwards, nor anything but counts reported.
    assert sink.kept_alive == []
    assert all(isinstance(c, PartitionCounts) for c in report.partitions.values())
    assert report.activities == N and report.partitions[span.partition_keys()[0]].activities
    # After each page it holds the month in progress and the span's first (written last).
    bound = len(truth[span.months[0]]) + max(len(v) for v in truth.values())
    assert held and max(held) <= bound < N // 4, (max(held), bound)


def test_a_resume_streams_the_staged_pages_into_months_before_listing_again(
    sandbox, connect_athlete, make_client, token_store, tmp_path
) -> None:
    user, athlete = connect_athlete(N, years=4.0)
    span = history(sandbox, user, athlete)
    sandbox.set_faults(outage_after_requests=5)  # five pages, then Strava is down
    with pytest.raises(SyncError):
        fetch_span(make_client(user, max_retries=0), span, CollectedPartitions(), None, token_store)
    staged = token_store.staged_pages(user, span.id)
    assert [p.page for p in staged] == [1, 2, 3, 4, 5]
    sandbox.clear_faults()
    before = sandbox.request_count(kind="api", path_prefix=LISTS)

    sink = RecordingSink(sandbox, tmp_path / "parquet")
    fetched = fetch_span(make_client(user), span, sink, None, token_store)
    # The staged pages filled months that were written before Strava was asked again.
    from_checkpoint = [ids for _, lists, ids in sink.writes if lists == before]
    assert sum(len(ids) for ids in from_checkpoint) > 3 * PAGE_SIZE
    assert fetched.resumed == sum(records(p) for p in staged) > 0
    ids = [i for _, _, written in sink.writes for i in written]
    assert sorted(ids) == sorted(a["id"] for a in sandbox.activities(athlete.athlete_id))
    assert sink.kept_alive == []


def _age(data_dir: Path, page: int) -> None:
    """Make one staged page older than a resume trusts (a real row, updated in place)."""
    with sqlite3.connect(data_dir / "sync_assets.db") as conn:
        conn.execute(
            "update sync_staging set created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', "
            "'-2 days') where page = ?",
            (page,),
        )


@pytest.mark.parametrize(("broken", "kept"), [("expired first page", 0), ("gap", 1)])
def test_a_resume_takes_only_the_pages_before_a_missing_one(
    broken, kept, sandbox, connect_athlete, make_client, token_store, data_dir, tmp_path
) -> None:
    """Pages past a missing one (expired or gone) cannot be continued from: their cursor
    would skip the missing page's activities. They are dropped and listed again."""
    user, athlete = connect_athlete(N, years=4.0)
    span = history(sandbox, user, athlete)
    sandbox.set_faults(outage_after_requests=4)
    with pytest.raises(SyncError):
        fetch_span(make_client(user, max_retries=0), span, CollectedPartitions(), None, token_store)
    staged = token_store.staged_pages(user, span.id)
    assert [p.page for p in staged] == [1, 2, 3, 4]
    if broken == "gap":
        with sqlite3.connect(data_dir / "sync_assets.db") as conn:
            conn.execute("delete from sync_staging where page = 2")
    else:
        _age(data_dir, 1)
    sandbox.clear_faults()

    sink = CollectedPartitions()
    fetched = fetch_span(make_client(user), span, sink, None, token_store)
    assert fetched.resumed == sum(records(p) for p in staged[:kept])
    ids = Counter(
        i for p in sink.partitions.values() for i in p.activities.column("strava_id").to_pylist()
    )
    assert sorted(ids) == sorted(a["id"] for a in sandbox.activities(athlete.athlete_id))
    assert set(ids.values()) == {1}  # none twice
    # What is staged now is this listing's, page after page.
    assert [p.page for p in token_store.staged_pages(user, span.id)] == list(
        range(1, N // PAGE_SIZE + 2)
    )


def test_an_activity_of_a_written_month_fails_the_fetch(sandbox, connect_athlete) -> None:
    """Strava listing an activity below the bound it was sent (a month already written) broke
    the listing's contract: the fetch fails (retryable) rather than guess what else is gone."""
    user, athlete = connect_athlete(300, years=2.0)
    span = history(sandbox, user, athlete)
    truth = sandbox.activities(athlete.athlete_id)
    months = MonthAssembler(span, CollectedPartitions(), datetime.now(UTC))
    months.take(truth[:200])
    last = int(datetime.fromisoformat(truth[199]["start_date"]).timestamp())
    months.settle(ListCursor(after=last - 1, before=int(span.end.timestamp()), order="ascending"))
    written = months.written
    early = next(k for k in written if written[k].activities and k != span.partition_keys()[0])
    month = split_key(early)[1]
    late = next(a for a in truth if month_key(datetime.fromisoformat(a["start_date"])) == month)
    with pytest.raises(SyncError) as err:
        months.take([{**late, "id": 10**15}])
    assert err.value.type == ErrorType.INVALID_RESPONSE and err.value.retryable
    assert "after the listing had moved past" in str(err.value)
