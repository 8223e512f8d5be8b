"""Sync metrics: `sync_step_metrics` and the four views over it and `sync_sessions`, with the
same names, columns and figures on PostgreSQL and SQLite.

Sessions are made through the Store API; only their start is moved (to two fixed UTC days) with
SQL, since the database sets `started_at` itself.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

from sync_assets.core import metrics
from sync_assets.core.errors import ErrorType, SyncError
from sync_assets.core.storage import METRICS_VIEWS, StepMetrics, Store, open_store

from .helpers import add_users

DAY1, DAY2 = date(2026, 3, 1), date(2026, 3, 2)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def start_session(url: str | None, data_dir: Path, store: Store, started: datetime, **kw) -> str:
    """A session of its own run (and user), started at `started`; returns the run id."""
    run, user = f"run-{uuid.uuid4()}", str(uuid.uuid4())
    if url:
        add_users(url, user)
    session = store.create_session(
        run_id=run,
        user_id=user,
        sync_type=kw.pop("sync_type", "backfill"),
        time_range_start=None,
        time_range_end=None,
    )
    if url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "update sync_sessions set started_at = %s where id = %s", (started, session.id)
            )
    else:
        with sqlite3.connect(data_dir / "sync_assets.db") as conn:  # the default's own form
            conn.execute(
                "update sync_sessions set started_at = ? where id = ?",
                (started.strftime("%Y-%m-%dT%H:%M:%S.000Z"), session.id),
            )
    if kw:
        store.update_session(run, user, **kw)
    return run


def make_sessions(url: str | None, data_dir: Path, store: Store) -> None:
    def completed(started: datetime, seconds: int, **counts: int) -> None:
        start_session(
            url,
            data_dir,
            store,
            started,
            status="completed",
            completed_at=started + timedelta(seconds=seconds),
            **counts,
        )

    def ended(started: datetime, status: str, **counts: int) -> None:
        start_session(url, data_dir, store, started, status=status, completed_at=started, **counts)

    # Day 1: 4 completed of 6 finished, and one still fetching (not finished: not counted).
    completed(at(DAY1, 6), 30, activities_fetched=150, activities_stored=150)
    # A weather re-enrichment fetches nothing from Strava: its volume is what it stored.
    completed(
        at(DAY1, 7),
        10,
        sync_type="enrichment",
        activities_stored=40,
        activities_updated=5,
        activities_skipped=5,
    )
    completed(at(DAY1, 8), 20, activities_fetched=199, activities_stored=180)
    completed(at(DAY1, 9), 90, activities_fetched=600, activities_updated=600)
    ended(at(DAY1, 10), "failed", activities_fetched=200)
    ended(at(DAY1, 11), "failed")
    start_session(
        url, data_dir, store, at(DAY1, 12), status="fetching_activities", activities_fetched=400
    )
    # Day 2: 4 completed, 2 failed, 1 cancelled.
    completed(at(DAY2, 1), 300, activities_fetched=2400, activities_stored=2400)
    completed(at(DAY2, 2), 2)  # nothing new anywhere
    completed(at(DAY2, 3), 101, activities_fetched=1000, activities_skipped=1000)
    completed(at(DAY2, 4), 650, activities_fetched=5200, activities_stored=5200)
    ended(at(DAY2, 5), "failed", activities_fetched=50)
    ended(at(DAY2, 6), "failed")
    ended(at(DAY2, 7), "cancelled", activities_fetched=800)


STEPS = [
    StepMetrics(
        "sync-a",
        "sync-a",
        "raw_strava_activities",
        api="strava",
        users=1,
        activities=1500,
        seconds=42.5,
        api_requests=60,
        api_errors=3,
        api_rate_limited=1,
        api_retries=2,
        api_latency_ms_total=4000.0,
        api_latency_ms_max=900.0,
        api_latency_ms_p95=350.0,
        api_quota_used=58.0,
        recorded_at=at(DAY1, 6, 1),
    ),
    StepMetrics(
        "sync-a",
        "sync-a",
        "weather_enriched_activities",
        api="weather",
        users=1,
        activities=1500,
        seconds=12.25,
        api_requests=5,
        api_errors=1,
        api_retries=1,
        api_latency_ms_total=2500.0,
        api_latency_ms_max=1200.0,
        api_latency_ms_p95=1100.0,
        api_quota_used=96.5,
        recorded_at=at(DAY1, 6, 2),
    ),
    StepMetrics(
        "sync-a",
        "sync-a",
        "runs_table",
        users=1,
        activities=1500,
        seconds=2.0,
        rows_written=3000,
        write_seconds=1.5,
        db_pool_max=4,
        db_pool_waits=2,
        db_pool_wait_ms=35.5,
        recorded_at=at(DAY1, 6, 3),
    ),
    # A re-execution of sync-a: its own run id, the same sync.
    StepMetrics(
        "sync-a",
        "sync-a-retry",
        "raw_strava_activities",
        api="strava",
        users=1,
        activities=200,
        seconds=3.0,
        api_requests=10,
        api_latency_ms_total=1500.0,
        api_latency_ms_max=400.0,
        api_latency_ms_p95=380.0,
        api_quota_used=10.0,
        recorded_at=at(DAY1, 9, 30),
    ),
    StepMetrics(
        "sync-a",
        "sync-a-retry",
        "runs_table",
        users=1,
        activities=200,
        seconds=0.5,
        rows_written=500,
        write_seconds=0.35,
        recorded_at=at(DAY1, 9, 31),
    ),
    # Everything unchanged: no row written, so not a write step.
    StepMetrics(
        "sync-b", "sync-b", "runs_table", activities=80, seconds=0.2, recorded_at=at(DAY1, 23, 59)
    ),
    StepMetrics(
        "sync-c",
        "sync-c",
        "raw_strava_activities",
        api="strava",
        users=2,
        activities=900,
        seconds=8.0,
        api_requests=7,
        api_latency_ms_total=700.0,
        api_latency_ms_max=150.0,
        api_quota_used=7.0,
        recorded_at=at(DAY2, 0, 0),
    ),
    # Every hour in the weather cache: no request at all.
    StepMetrics(
        "sync-c",
        "sync-c",
        "weather_enriched_activities",
        api="weather",
        users=2,
        activities=900,
        seconds=0.75,
        recorded_at=at(DAY2, 0, 1),
    ),
    StepMetrics(
        "sync-c",
        "sync-c",
        "runs_table",
        users=2,
        activities=900,
        seconds=1.25,
        rows_written=1200,
        write_seconds=0.8,
        db_pool_max=4,
        db_pool_waits=1,
        db_pool_wait_ms=5000.0,
        db_pool_timeouts=1,
        recorded_at=at(DAY2, 0, 2),
    ),
]


@pytest.fixture
def store(backend) -> tuple[Store, str | None, Path]:
    url, data_dir = backend
    return open_store(url, data_dir), url, data_dir


def test_views_compute_the_same_figures_on_both_backends(store) -> None:
    s, url, data_dir = store
    make_sessions(url, data_dir, s)
    for m in STEPS:
        s.record_step_metrics(m)

    assert s.metrics_view("sync_success_rate") == [
        {"day": DAY1, "syncs": 6, "completed": 4, "failed": 2, "cancelled": 0,
         "success_rate": 0.6667},
        {"day": DAY2, "syncs": 7, "completed": 4, "failed": 2, "cancelled": 1,
         "success_rate": 0.5714},
    ]  # fmt: skip
    assert s.metrics_view("sync_duration_by_volume") == [
        {"volume": "0", "volume_min": 0, "syncs": 1, "avg_seconds": 2.0, "max_seconds": 2.0,
         "seconds_per_1000_activities": None},
        # 150, 50 (stored + updated + skipped) and 199 activities in 30, 10 and 20 s.
        {"volume": "1-199", "volume_min": 1, "syncs": 3, "avg_seconds": 20.0,
         "max_seconds": 30.0, "seconds_per_1000_activities": 150.376},
        {"volume": "200-999", "volume_min": 200, "syncs": 1, "avg_seconds": 90.0,
         "max_seconds": 90.0, "seconds_per_1000_activities": 150.0},
        {"volume": "1000-4999", "volume_min": 1000, "syncs": 2, "avg_seconds": 200.5,
         "max_seconds": 300.0, "seconds_per_1000_activities": 117.941},
        {"volume": "5000+", "volume_min": 5000, "syncs": 1, "avg_seconds": 650.0,
         "max_seconds": 650.0, "seconds_per_1000_activities": 125.0},
    ]  # fmt: skip
    assert s.metrics_view("sync_api_health") == [
        # 70 requests, 3 errors, 5,500 ms in all; p95: the highest step's.
        {"day": DAY1, "api": "strava", "requests": 70, "errors": 3, "error_rate": 0.0429,
         "rate_limited": 1, "retries": 2, "avg_latency_ms": 78.6, "max_latency_ms": 900.0,
         "p95_latency_ms": 380.0, "quota_used": 68.0},
        {"day": DAY1, "api": "weather", "requests": 5, "errors": 1, "error_rate": 0.2,
         "rate_limited": 0, "retries": 1, "avg_latency_ms": 500.0, "max_latency_ms": 1200.0,
         "p95_latency_ms": 1100.0, "quota_used": 96.5},
        {"day": DAY2, "api": "strava", "requests": 7, "errors": 0, "error_rate": 0.0,
         "rate_limited": 0, "retries": 0, "avg_latency_ms": 100.0, "max_latency_ms": 150.0,
         "p95_latency_ms": None, "quota_used": 7.0},
        # No request that day: no rate, no latency (rather than a division by zero).
        {"day": DAY2, "api": "weather", "requests": 0, "errors": 0, "error_rate": None,
         "rate_limited": 0, "retries": 0, "avg_latency_ms": None, "max_latency_ms": 0.0,
         "p95_latency_ms": None, "quota_used": 0.0},
    ]  # fmt: skip
    assert s.metrics_view("sync_write_performance") == [
        # 3,500 rows in 1.85 s; the step that wrote nothing is left out.
        {"day": DAY1, "steps": 2, "rows_written": 3500, "write_seconds": 1.85,
         "rows_per_second": 1891.9, "db_pool_waits": 2, "db_pool_timeouts": 0},
        {"day": DAY2, "steps": 1, "rows_written": 1200, "write_seconds": 0.8,
         "rows_per_second": 1500.0, "db_pool_waits": 1, "db_pool_timeouts": 1},
    ]  # fmt: skip

    for bad in ("sync_sessions", "runs", "sync_api_health; drop table runs", ""):
        with pytest.raises(ValueError, match="not a metrics view"):
            s.metrics_view(bad)
    assert set(METRICS_VIEWS) == {
        "sync_success_rate",
        "sync_duration_by_volume",
        "sync_api_health",
        "sync_write_performance",
    }


def test_step_metrics_round_trip_and_filters(store) -> None:
    s, _, _ = store
    for m in STEPS:
        s.record_step_metrics(m)

    everything = s.step_metrics(since=at(DAY1, 0))
    assert everything == STEPS  # every field back as written, oldest first
    assert s.step_metrics(since=at(DAY2, 0)) == STEPS[6:]  # at or after `since`
    assert s.step_metrics(since=at(DAY1, 6, 2)) == STEPS[1:]
    assert s.step_metrics(since=at(DAY2, 0, 3)) == []
    strava = s.step_metrics(since=at(DAY1, 0), api="strava")
    assert strava == [STEPS[0], STEPS[3], STEPS[6]]
    assert s.step_metrics(since=at(DAY2, 0), api="weather") == [STEPS[7]]
    assert s.step_metrics(since=at(DAY1, 0), step="runs_table") == [STEPS[i] for i in (2, 4, 5, 8)]
    assert s.step_metrics(since=at(DAY1, 0), api="strava", step="runs_table") == []
    # recorded_at comes back as an aware UTC datetime.
    assert everything[0].recorded_at == at(DAY1, 6, 1)
    assert everything[0].recorded_at.utcoffset() == timedelta(0)

    # Without recorded_at, the database's clock; the defaults of a step that did little.
    before = datetime.now(UTC) - timedelta(seconds=5)
    s.record_step_metrics(StepMetrics("sync-d", "sync-d", "runs_table"))
    (fresh,) = s.step_metrics(since=before)
    assert fresh.recorded_at is not None
    assert abs(fresh.recorded_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert replace(fresh, recorded_at=None) == StepMetrics("sync-d", "sync-d", "runs_table")
    assert (fresh.api, fresh.api_latency_ms_p95, fresh.db_pool_max, fresh.rows_written) == (
        None,
        None,
        None,
        0,
    )


class _StepStore:
    """What `metrics.step` needs of a store: the rows written, pool counters taken."""

    def __init__(self) -> None:
        self.rows: list[StepMetrics] = []
        self.pool_takes = 0

    def record_step_metrics(self, row: StepMetrics) -> None:
        self.rows.append(row)

    def take_pool_stats(self) -> dict[str, int]:
        self.pool_takes += 1
        return {"pool_max": 4, "requests_queued": self.pool_takes, "requests_wait_ms": 7}


def test_a_step_records_its_row_when_it_ends_also_when_it_raises() -> None:
    store = _StepStore()
    run = SimpleNamespace(run_id="run-2", tags={"dagster/root_run_id": "run-1"})
    log = logging.getLogger(__name__)
    with metrics.step(store, run, "runs_table", log, api="strava") as m:
        m.update(activities=3, rows_written=2)
    (row,) = store.rows
    assert (row.sync_id, row.dagster_run_id, row.step, row.api) == (
        "run-1",
        "run-2",
        "runs_table",
        "strava",
    )
    assert (row.activities, row.rows_written, row.db_pool_max) == (3, 2, None)
    assert 0 <= row.seconds < 5  # the block's duration

    # A failure: the row still comes, with what `collect` says was spent; pool waits counted
    # from the step's start.
    with (
        pytest.raises(ValueError),
        metrics.step(
            store, run, "runs_table", log, collect=lambda: {"users": 2, "seconds": 1.5}, pool=True
        ),
    ):
        raise ValueError("the database refused")
    row = store.rows[-1]
    assert (row.users, row.seconds, row.db_pool_max, row.db_pool_waits) == (2, 1.5, 4, 2)
    assert row.db_pool_wait_ms == 7.0

    # No row: an error outside `record_on`, or a step that never got to its work.
    with pytest.raises(ValueError), metrics.step(store, run, "s", log, record_on=SyncError):
        raise ValueError("not a sync error")
    with pytest.raises(ValueError), metrics.step(store, run, "s", log, collect=lambda: None):
        raise ValueError("before the work")
    assert len(store.rows) == 2
    with pytest.raises(SyncError), metrics.step(store, run, "s", log, record_on=SyncError):
        raise SyncError(ErrorType.NETWORK, "down", retryable=True)
    assert store.rows[-1].step == "s"
