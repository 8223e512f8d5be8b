"""The weather cache's layout, on SQLite and PostgreSQL: one row per provider, cell and UTC day
holding its hours; partly published days; hours merged into a cached day; and the migration
that turns a cache of hourly rows into day rows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg.rows import dict_row

from sync_assets.core.clients.weather import (
    ALL_HOURS,
    WEATHER_FIELDS,
    DayWeather,
    HourlyWeather,
    OpenMeteoProvider,
    hour_at,
)
from sync_assets.core.enrichment.weather import resolve_weather
from sync_assets.core.migrations import migrate_postgres
from sync_assets.core.storage import Store, close_stores, open_store
from sync_assets.core.storage.crypto import TokenCipher
from sync_assets.core.storage.postgres import PostgresStore
from sync_assets.core.storage.sqlite import SqliteStore

from .helpers import migrate_postgres_until, migrate_sqlite_until
from .test_weather import NOW, activities, keys_of, no_sleep

Rows = Callable[[], list[dict]]
# The last migrations of the hourly cache.
HOURLY_PG = "20261201000200"
HOURLY_SQLITE = "0011_seed_contract.sql"


def _sqlite_rows(path: Path) -> list[dict]:
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("SELECT * FROM weather_cache")]
    for r in rows:
        r["day_utc"] = date.fromisoformat(r["day_utc"])
        for name in WEATHER_FIELDS:
            r[name] = None if r[name] is None else json.loads(r[name])
    return _keyed(rows)


def _pg_rows(url: str) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute(
            "select *, cell_lat::float8 as cell_lat, cell_lng::float8 as cell_lng"
            " from public.weather_cache"
        ).fetchall()
    return _keyed(rows)


def _keyed(rows: list[dict]) -> list[dict]:
    for r in rows:
        r["cell"] = (r.pop("cell_lat"), r.pop("cell_lng"))
    return sorted(rows, key=lambda r: (r["provider"], r["cell"], r["day_utc"]))


@pytest.fixture(params=["sqlite", "postgres"])
def cache(request, tmp_path: Path, monkeypatch) -> Iterator[tuple[Store, Rows]]:
    """A store and a reader of its weather_cache rows as they are in the database."""
    if request.param == "sqlite":
        store = open_store(None, tmp_path / "data")
        yield store, lambda: _sqlite_rows(tmp_path / "data" / "sync_assets.db")
    else:
        url = request.getfixturevalue("pg_url")
        monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
        store = open_store(url, tmp_path / "data")
        yield store, lambda: _pg_rows(url)
    close_stores()


def _day_keys(cell: tuple[float, float], day: date) -> set:
    return {(cell, hour_at(day, h)) for h in range(24)}


# -- the layout ---------------------------------------------------------------------------------
def test_a_request_writes_one_row_per_cell_and_day_it_covers(server, cache) -> None:
    store, rows = cache
    provider = OpenMeteoProvider(server.weather_url, sleep=no_sleep)
    keys = keys_of(activities(300, seed=31, days=200))
    needed: dict = {}
    for cell, hour in keys:
        needed.setdefault(cell, set()).add(hour)
    plan = provider.plan(needed, NOW.date())
    covered = {
        (loc.cell, loc.start + timedelta(days=k))
        for request in plan
        for loc in request.locations
        for k in range(loc.days)
    }
    found, statuses, report = resolve_weather(keys, provider, store, now=NOW)
    assert statuses == {} and len(found) == len(keys)
    got = rows()
    # One row per (provider, cell, day): the days the requests covered, none twice, no hour row.
    assert [(r["cell"], r["day_utc"]) for r in got] == sorted(covered)
    assert {r["provider"] for r in got} == {"open-meteo"}
    assert report.hours_fetched == 24 * len(covered)
    for r in got:
        assert r["hours_present"] == ALL_HOURS
        assert len(r["temperature_celsius"]) == len(r["weather_condition"]) == 24
        assert r["visibility_meters"] is None and r["uv_index"] is None  # not in the archive
    for r in got[:: max(1, len(got) // 10)]:
        for h in (0, 7, 23):
            truth = server.weather.weather_at(*r["cell"], hour_at(r["day_utc"], h).timestamp())
            assert r["temperature_celsius"][h] == truth["temperature_2m"]
            assert r["pressure_hpa"][h] == truth["pressure_msl"]
            assert r["weather_code"][h] == truth["weather_code"]
    # Every hour of a covered day is read back from its row, in one lookup.
    some = {key for cell, day in sorted(covered)[:5] for key in _day_keys(cell, day)}
    cached = store.weather_lookup("open-meteo", some | keys)
    assert cached.keys() == some | keys and all(cached[k] == found[k] for k in keys)
    # The same days again: no row gains an hour, nothing is written.
    assert store.weather_store("open-meteo", provider.fetch_days(plan[0])) == 0
    assert rows() == got
    provider.close()


def test_a_partly_published_day_keeps_its_missing_hours_apart_then_gains_them(
    server, cache
) -> None:
    store, rows = cache
    sandbox = server.sandbox
    # The archive publishes up to now - 5 days: put that edge at 12:30 UTC of a day.
    now = datetime.fromtimestamp(sandbox.now(), UTC)
    past_midnight = now - now.replace(hour=0, minute=0, second=0, microsecond=0)
    sandbox.advance_clock(
        ((timedelta(hours=12, minutes=30) - past_midnight) % timedelta(days=1)).total_seconds()
    )
    now = datetime.fromtimestamp(sandbox.now(), UTC)
    edge = (now - timedelta(days=5)).date()
    cell = (48.9, 2.3)
    early, late = (cell, hour_at(edge, 8)), (cell, hour_at(edge, 15))
    provider = OpenMeteoProvider(server.weather_url, sleep=no_sleep)
    found, statuses, _ = resolve_weather({early, late}, provider, store, now=now)
    assert set(found) == {early} and statuses[late].status == "pending"
    (row,) = rows()
    assert row["day_utc"] == edge and row["hours_present"] == (1 << 13) - 1  # 00:00-12:00
    assert None not in row["temperature_celsius"][:13]
    assert row["temperature_celsius"][13:] == [None] * 11
    published = {(cell, hour_at(edge, h)) for h in range(13)}
    assert store.weather_lookup("open-meteo", _day_keys(cell, edge)).keys() == published
    # A day later the archive has the rest: the same row gains its hours, the others kept.
    sandbox.advance_clock(86_400)
    again, statuses, report = resolve_weather(
        {early, late}, provider, store, now=now + timedelta(days=1)
    )
    assert statuses == {} and again[early] == found[early] and report.cache_hits == 1
    (row_after,) = rows()
    assert row_after["hours_present"] == ALL_HOURS and None not in row_after["temperature_celsius"]
    assert row_after["temperature_celsius"][:13] == row["temperature_celsius"][:13]
    provider.close()


def test_hours_join_their_cached_day_and_cached_hours_stay_as_they_are(cache) -> None:
    """OpenWeatherMap answers one hour per call: its hours of a day gather in one row."""
    store, rows = cache
    cell, day = (40.7, -74.0), date(2021, 3, 1)
    at8 = HourlyWeather(temperature_celsius=1.5, weather_condition="Clear sky", uv_index=0.5)
    at14 = HourlyWeather(temperature_celsius=7.25, humidity_percent=40.0, visibility_meters=9e3)
    blank = HourlyWeather()  # an hour the provider answered with no value at all

    def store_hours(hours: dict) -> int:
        return store.weather_store("openweathermap", {(cell, day): DayWeather.of_hours(hours)})

    assert store_hours({8: at8}) == 1
    assert store_hours({14: at14, 8: HourlyWeather(temperature_celsius=99.0)}) == 1
    assert store_hours({8: at8, 14: at14}) == 0  # nothing new: not written
    assert store_hours({20: blank}) == 1
    assert store_hours({}) == 0  # a day without any hour is not kept
    assert store.weather_lookup("openweathermap", _day_keys(cell, day)) == {
        (cell, hour_at(day, 8)): at8,  # the hour cached first
        (cell, hour_at(day, 14)): at14,
        (cell, hour_at(day, 20)): blank,  # present, unlike the hours never fetched
    }
    (row,) = rows()
    assert row["hours_present"] == 1 << 8 | 1 << 14 | 1 << 20
    assert row["visibility_meters"] == [None] * 14 + [9e3] + [None] * 9
    assert row["weather_code"] is None and row["pressure_hpa"] is None
    assert store.weather_lookup("open-meteo", _day_keys(cell, day)) == {}  # providers apart
    # Two keys of one row (the table rounds cells to 2 decimals) in one batch: one row.
    later = date(2021, 3, 5)
    batch = {
        (cell, later): DayWeather.of_hours({1: at8}),
        ((cell[0] + 1e-9, cell[1]), later): DayWeather.of_hours({2: at14}),
    }
    assert store.weather_store("openweathermap", batch) == 1 and len(rows()) == 2
    assert store.weather_lookup("openweathermap", _day_keys(cell, later)) == {
        (cell, hour_at(later, 1)): at8,
        (cell, hour_at(later, 2)): at14,
    }
    assert (
        store.weather_lookup("openweathermap", {(cell, hour_at(day, 8) + timedelta(minutes=30))})
        == {}
    )


# -- the migration of an hourly cache -----------------------------------------------------------
D1, D2 = date(2021, 3, 1), date(2021, 3, 2)
PARIS, NEW_YORK = (48.9, 2.3), (40.7, -74.0)
FETCHED = "2024-02-03T04:05:06Z"


def _om(h: int) -> HourlyWeather:
    return HourlyWeather(
        temperature_celsius=round(-3.5 + 0.7 * h, 2),
        feels_like_celsius=round(-6.25 + 0.5 * h, 2),
        humidity_percent=60.0 + h,
        pressure_hpa=1013.25,
        wind_speed_mps=3.21,
        wind_direction_degrees=270.0,
        weather_code=3,
        weather_condition="Overcast",
    )


# (provider, cell, hour, weather): a whole day, a partly published one, two hours of
# OpenWeatherMap (one without any value) and a row not at a whole hour (never looked up).
HOURLY = [
    *[("open-meteo", PARIS, hour_at(D1, h), _om(h)) for h in range(24)],
    *[("open-meteo", PARIS, hour_at(D2, h), _om(h)) for h in range(10)],
    (
        "openweathermap",
        NEW_YORK,
        hour_at(D1, 7),
        HourlyWeather(
            temperature_celsius=2.5,
            weather_condition="Light rain",
            visibility_meters=9000.0,
            uv_index=1.2,
        ),
    ),
    ("openweathermap", NEW_YORK, hour_at(D1, 20), HourlyWeather()),
    (
        "openweathermap",
        NEW_YORK,
        hour_at(D1, 10) + timedelta(minutes=30),
        HourlyWeather(temperature_celsius=4.0),
    ),
]
COLUMNS = "provider, cell_lat, cell_lng, hour_utc, " + ", ".join(WEATHER_FIELDS) + ", fetched_at"


def _hourly_values(stamp: Callable[[datetime], str]) -> list[tuple]:
    return [
        (provider, *cell, stamp(hour), *(getattr(w, f) for f in WEATHER_FIELDS), FETCHED)
        for provider, cell, hour, w in HOURLY
    ]


def _check_converted(store: Store, rows: list[dict]) -> None:
    expected = {
        (provider, (cell, hour)): w for provider, cell, hour, w in HOURLY if hour.minute == 0
    }
    for provider, cell, day in (("open-meteo", PARIS, D1), ("open-meteo", PARIS, D2)):
        got = store.weather_lookup(provider, _day_keys(cell, day))
        assert got == {
            k: w for (p, k), w in expected.items() if p == provider and k[1].date() == day
        }
    owm = store.weather_lookup("openweathermap", _day_keys(NEW_YORK, D1))
    assert owm == {k: w for (p, k), w in expected.items() if p == "openweathermap"}
    assert [(r["provider"], r["cell"], r["day_utc"], r["hours_present"]) for r in rows] == [
        ("open-meteo", PARIS, D1, ALL_HOURS),
        ("open-meteo", PARIS, D2, (1 << 10) - 1),
        ("openweathermap", NEW_YORK, D1, 1 << 7 | 1 << 20),
    ]
    partial = rows[1]
    assert partial["temperature_celsius"][10:] == [None] * 14
    assert partial["visibility_meters"] is None and rows[2]["weather_code"] is None
    assert all(str(r["fetched_at"]).startswith("2024-02-03") for r in rows)


def _complete_the_partial_day(store: Store) -> None:
    """After the migration the converted row takes the hours it lacked, as any other."""
    whole = DayWeather.of_hours({h: _om(h) for h in range(24)})
    assert store.weather_store("open-meteo", {(PARIS, D2): whole}) == 1
    assert len(store.weather_lookup("open-meteo", _day_keys(PARIS, D2))) == 24


def test_the_postgres_migration_turns_hourly_rows_into_days(pg_url) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        migrate_postgres_until(conn, HOURLY_PG)
        placeholders = ", ".join(["%s"] * (len(WEATHER_FIELDS) + 5))
        conn.cursor().executemany(
            f"insert into public.weather_cache ({COLUMNS}) values ({placeholders})",
            _hourly_values(lambda hour: hour.isoformat()),
        )
    with psycopg.connect(pg_url) as conn:
        assert "20261201001700_weather_day_rows.sql" in migrate_postgres(conn)
    store = PostgresStore(pg_url, TokenCipher([Fernet.generate_key().decode()]))
    try:
        _check_converted(store, _pg_rows(pg_url))
        _complete_the_partial_day(store)
    finally:
        store.close()


def test_the_sqlite_migration_turns_hourly_rows_into_days(tmp_path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrate_sqlite_until(conn, HOURLY_SQLITE)
        placeholders = ", ".join(["?"] * (len(WEATHER_FIELDS) + 5))
        conn.executemany(
            f"INSERT INTO weather_cache ({COLUMNS}) VALUES ({placeholders})",
            _hourly_values(lambda hour: hour.strftime("%Y-%m-%dT%H:%M:%SZ")),
        )
    store = SqliteStore(path, TokenCipher([Fernet.generate_key().decode()]))  # migrates
    try:
        _check_converted(store, _sqlite_rows(path))
        _complete_the_partial_day(store)
    finally:
        store.close()
