"""`weather_enriched_activities` in the Dagster job: sandbox -> Dagster -> SQLite or PostgreSQL,
with the Open-Meteo sandbox for weather; outages degrade, a later run fills in exactly those."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from dagster import DagsterInstance, build_sensor_context, instance_for_test, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from sync_assets.assets import raw_strava_activities, runs_table, weather_enriched_activities
from sync_assets.core.enrichment.weather import cell_of, hour_of
from sync_assets.core.sessions import SYNC_TYPE_TAG
from sync_assets.core.storage import close_stores, open_store
from sync_assets.job_names import WEATHER_ENRICHMENT_JOB
from sync_assets.partitions import USERS_PARTITIONS_NAME, month_key
from sync_assets.resources import SupabaseResource
from sync_assets.sensors.enrichment import weather_retry_sensor

from .helpers import add_users, make_resources, run_metadata, save_tokens

ASSETS = [raw_strava_activities, weather_enriched_activities, runs_table]


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


def connect(url, store, sandbox, instance, n: int, **kw) -> tuple[str, object]:
    athlete = sandbox.add_athlete(n_activities=n, **kw)
    user = str(uuid.uuid4())
    if url:
        add_users(url, user)
    save_tokens(store, user, athlete)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    return user, athlete


def span(sandbox, athlete) -> tuple[str, str]:
    first = sandbox.activities(athlete.athlete_id)[0]["start_date"]
    return month_key(datetime.fromisoformat(first)), month_key(
        datetime.fromtimestamp(sandbox.now(), UTC)
    )


def run(instance, resources, user: str, first: str, last: str, *, only_enrich: bool = False):
    return materialize(
        ASSETS,
        selection=[weather_enriched_activities, runs_table] if only_enrich else None,
        instance=instance,
        resources=resources,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: f"{first}|{user}",
            ASSET_PARTITION_RANGE_END_TAG: f"{last}|{user}",
            **({SYNC_TYPE_TAG: "enrichment"} if only_enrich else {}),
        },
        raise_on_error=False,
    )


def stored_runs(url: str | None, data_dir: Path, user: str) -> dict[int, dict]:
    """Every `runs` row of a user, read back with plain SQL."""
    if url:
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(url, row_factory=dict_row) as conn:
            rows = conn.execute("select * from public.runs where user_id = %s", (user,)).fetchall()
        return {r["strava_id"]: r for r in rows}
    import sqlite3

    conn = sqlite3.connect(data_dir / "sync_assets.db")
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("select * from runs where user_id = ?", (user,))]
    conn.close()
    for r in rows:
        r["enrichment_status"] = json.loads(r["enrichment_status"])
    return {r["strava_id"]: r for r in rows}


def test_the_sync_stores_place_and_start_hour_weather(
    backend, sandbox, server, instance, tmp_path
) -> None:
    url, data_dir = backend
    resources = make_resources(sandbox, server, tmp_path, url, data_dir)
    store = open_store(url, data_dir)
    user, athlete = connect(url, store, sandbox, instance, 400)
    first, last = span(sandbox, athlete)
    result = run(instance, resources, user, first, last)
    assert result.success
    truth = {a["id"]: a for a in sandbox.activities(athlete.athlete_id)}
    rows = stored_runs(url, data_dir, user)
    assert rows.keys() == truth.keys()
    now = datetime.fromtimestamp(sandbox.now(), UTC)
    located = pending = 0
    pending_keys: set = set()
    for sid, row in rows.items():
        status = row["enrichment_status"]
        latlng = truth[sid]["start_latlng"]
        if not latlng:
            assert status["weather_status"] == "no_location" and status["weather"] is False
            assert row["city"] is None and row["temperature_celsius"] is None
            continue
        located += 1
        assert row["country"] and row["city"], row  # the athletes live in towns
        hour = hour_of(datetime.fromisoformat(truth[sid]["start_date"]))
        if hour > now - timedelta(days=server.weather.lag_days):
            pending += 1
            pending_keys.add((cell_of(*latlng), hour))
            assert status["weather_status"] == "pending" and row["temperature_celsius"] is None
            continue
        assert status["weather"] is True, status
        cell = cell_of(*latlng)
        expected = server.weather.weather_at(cell[0], cell[1], hour.timestamp())
        assert row["temperature_celsius"] == expected["temperature_2m"]
        assert row["wind_speed_ms"] == expected["wind_speed_10m"]
        assert row["humidity_percent"] == expected["relative_humidity_2m"]
        assert row["weather_condition"]
        assert row["visibility_meters"] is None and row["uv_index"] is None
    # Every activity with coordinates was located (their share depends on the day the
    # sandbox's history ends, around three quarters).
    assert located == sum(1 for a in truth.values() if a["start_latlng"]) > 250
    md = run_metadata(result, "weather_enriched_activities")
    assert md["weather_enriched"] == located - pending
    assert md["weather_pending"] == pending
    assert md["weather_requests_one_per_activity"] == located
    # A few requests for hundreds of activities: they depend on places and dates only.
    assert md["weather_requests"] == server.weather.request_count("archive") <= 10
    session = store.get_session(result.run_id, user)
    assert session.status == "completed"
    assert session.activities_enriched == located - pending
    # Again: everything from the cache, nothing rewritten.
    before = server.weather.request_count("archive")
    again = run(instance, resources, user, first, last)
    assert again.success
    assert (
        server.weather.request_count("archive") - before
        == run_metadata(again, "weather_enriched_activities")["weather_requests"]
    )
    md = run_metadata(again, "weather_enriched_activities")
    # Only the pending hours are asked for again; every other hour comes from the cache.
    assert md["weather_cache_hits"] == md["weather_hours_needed"] - len(pending_keys)
    assert run_metadata(again, "runs_table")["updated"] == 0


def test_a_club_mate_at_the_same_places_and_days_costs_no_weather_request(
    sandbox, server, instance, tmp_path, pg_url, monkeypatch
) -> None:
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    data_dir = tmp_path / "data"
    resources = make_resources(sandbox, server, tmp_path, pg_url, data_dir)
    store = open_store(pg_url, data_dir)
    a_user, a = connect(pg_url, store, sandbox, instance, 200, years=1.0)
    b_user, b = connect(pg_url, store, sandbox, instance, 0)
    published = datetime.fromtimestamp(sandbox.now(), UTC) - timedelta(days=7)
    for activity in sandbox.activities(a.athlete_id):  # same rides, an hour later
        start = datetime.fromisoformat(activity["start_date"]) + timedelta(minutes=50)
        if hour_of(start).date() != datetime.fromisoformat(activity["start_date"]).date():
            continue  # its weather hour is on the next day, which A did not need
        if start > published:
            continue  # days the archive has not published: pending for A too, asked again
        copy = {k: v for k, v in activity.items() if k not in ("id", "athlete")}
        sandbox.add_activity(b.athlete_id, copy, start_date=start)
    first, last = span(sandbox, a)
    assert run(instance, resources, a_user, first, last).success
    before = server.weather.request_count("archive")
    result = run(instance, resources, b_user, first, last)
    assert result.success
    md = run_metadata(result, "weather_enriched_activities")
    assert md["activities"] > 150 and md["weather_requests"] == 0
    assert server.weather.request_count("archive") == before
    close_stores()


def test_an_outage_degrades_and_a_later_run_enriches_exactly_those_without_strava(
    backend, sandbox, server, instance, tmp_path
) -> None:
    url, data_dir = backend
    resources = make_resources(sandbox, server, tmp_path, url, data_dir, weather={"max_retries": 1})
    store = open_store(url, data_dir)
    user, athlete = connect(url, store, sandbox, instance, 300)
    first, last = span(sandbox, athlete)
    server.weather.set_faults(outage=True)
    result = run(instance, resources, user, first, last)
    assert result.success  # the activities flow on without weather
    rows = stored_runs(url, data_dir, user)
    failed = {
        sid for sid, r in rows.items() if r["enrichment_status"]["weather_status"] == "failed"
    }
    assert len(failed) > 200
    reason = rows[next(iter(failed))]["enrichment_status"]["weather_reason"]
    assert reason.startswith("SERVER") and rows[next(iter(failed))]["temperature_celsius"] is None
    assert rows[next(iter(failed))]["city"]  # geocoding is offline: unaffected
    assert store.get_session(result.run_id, user).status == "completed"

    # The retry sensor asks for a weather-only run over the user's months with such activities.
    now = datetime.now(UTC) + timedelta(days=2)  # past every retry_after
    assert {u for u, _, _ in store.pending_enrichment(now)} == {user}
    with build_sensor_context(  # the tick's store is closed at its end
        instance=instance,
        resources={"supabase": SupabaseResource(database_url=url, data_dir=str(data_dir))},
    ) as ctx:
        requests = list(weather_retry_sensor(ctx))
        assert requests and all(r.job_name == WEATHER_ENRICHMENT_JOB for r in requests)
        assert {r.tags[ASSET_PARTITION_RANGE_START_TAG].split("|")[1] for r in requests} == {user}
        assert [r.run_key for r in requests] == [r.run_key for r in weather_retry_sensor(ctx)]

    server.weather.clear_faults()
    resolved_breaker = resources["weather"].client().breaker
    resolved_breaker.close()  # the outage opened it; an operator (or 60 s) closes it
    strava_before = sandbox.request_count(kind=None)
    retry = run(instance, resources, user, first, last, only_enrich=True)
    assert retry.success
    assert sandbox.request_count(kind=None) == strava_before  # not one Strava request
    md = run_metadata(retry, "runs_table")
    pending_now = {
        sid
        for sid, r in stored_runs(url, data_dir, user).items()
        if r["enrichment_status"]["weather_status"] == "pending"
    }
    assert md["updated"] == len(failed) and md["saved"] == 0
    after = stored_runs(url, data_dir, user)
    for sid in failed - pending_now:
        assert after[sid]["enrichment_status"]["weather"] is True
        assert after[sid]["temperature_celsius"] is not None
    session = store.get_session(retry.run_id, user)
    assert session.sync_type == "enrichment" and session.status == "completed"
    assert {u for u, _, _ in store.pending_enrichment(now)} <= ({user} if pending_now else set())
