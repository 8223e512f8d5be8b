"""Hostile and broken input: property-based tests of the payload models and the `runs` mapping,
hostile records through the real pipeline, and broken bodies from both APIs over loopback.

What the models accept and what they quarantine ("absurd" values), see `sync_assets/core/models.py`:

* only `id` and `start_date` are required: any other field Strava's schema has may be missing
  (absent or null) and is stored as 0, "", false, "Unknown" (sport_type without type) or null
  (athlete), noted in `data_quality`; moving time above elapsed time is kept, and noted;
* types are strict: ids, times and distances are JSON numbers (no "5000", no true, no 12.5
  where an integer belongs), flags are booleans (no 1, no "yes"), dates are ISO 8601 strings
  with a UTC offset (no Unix times);
* ids are in 1 .. 2**63-1 (they land in bigint columns);
* `start_date` is not before 1990-01-01 (before GPS watches) nor more than 2 days ahead of now;
  `start_date_local` is at most 18 h away from `start_date` (it only differs by the offset);
* distance 0 .. 2,000 km, moving/elapsed time 0 .. 30 days, elevation gain 0 .. 100 km,
  speeds 0 .. 200 (average) / 500 (max) m/s, heart rate 0 .. 260 (average) / 300 (max) bpm;
* coordinates are [lat, lng] with -90 <= lat <= 90, -180 <= lng <= 180 ([] or null: none);
* a name has at most 2,000 characters, labels (type, sport_type, timezone, visibility) 200;
* nothing a JSON column cannot store, anywhere in the record: lone surrogates, NUL, NaN, inf;
* the whole record is at most 1 MB of JSON.

Anything else is kept verbatim in the payload; a record that breaks a rule is quarantined with
the field named in the reason, never dropped.
"""

from __future__ import annotations

import json
import math
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from cryptography.fernet import Fernet
from dagster import instance_for_test
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row
from pydantic import SecretStr

from sync_assets.core.clients.rate_limit import RateLimitBudget
from sync_assets.core.clients.strava import StravaClient
from sync_assets.core.clients.weather import (
    OPEN_METEO_VARIABLES,
    OpenMeteoProvider,
    OpenWeatherMapProvider,
)
from sync_assets.core.errors import ErrorType, SyncError
from sync_assets.core.models import (
    ACTIVITY_SCHEMA,
    DATA_QUALITY_NOTES,
    MISSING_DEFAULTS,
    QUARANTINE_SCHEMA,
    UNKNOWN_SPORT_TYPE,
    activities_table,
    activity_row,
    quarantine_table,
    validate_page,
)
from sync_assets.core.storage import QuarantineRecord, close_stores, open_store, runs_rows
from sync_assets.core.storage.crypto import TokenCipher
from sync_assets.core.storage.postgres import PostgresStore
from sync_assets.core.storage.sqlite import SqliteStore
from sync_assets.partitions import USERS_PARTITIONS_NAME, month_key

from .helpers import add_users, connect_user, make_resources, sync_range

NOW = datetime.now(UTC).replace(microsecond=0)
FETCHED = datetime(2026, 1, 2, tzinfo=UTC)
SECRET_KEY = "owm-secret-key-do-not-leak"

# -- strategies -------------------------------------------------------------------------------
# Text as JSON can carry it, minus what no database column takes (lone surrogates, NUL).
finite_float = st.floats(allow_nan=False, allow_infinity=False)
clean_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
json_leaf = st.none() | st.booleans() | st.integers() | finite_float | clean_text
json_value = st.recursive(
    json_leaf,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(clean_text, kids, max_size=4),
    max_leaves=12,
)
SPORTS = ["Run", "TrailRun", "Ride", "Walk", "Hike", "Swim", "VirtualRide", "Workout"]
CORE = {
    "id", "athlete", "name", "type", "sport_type", "start_date", "start_date_local", "timezone",
    "distance", "moving_time", "elapsed_time", "total_elevation_gain", "average_speed",
    "max_speed", "has_heartrate", "average_heartrate", "max_heartrate", "start_latlng",
    "end_latlng", "manual", "trainer", "commute", "private", "visibility",
}  # fmt: skip


# Strava's schema makes them optional: absent or null, the record is still stored.
OPTIONAL = [
    "timezone", "type", "total_elevation_gain", "name", "distance", "moving_time",
    "elapsed_time", "athlete", "sport_type", "start_date_local", "manual", "trainer", "commute",
    "private", "has_heartrate", "visibility", "start_latlng", "average_speed",
]  # fmt: skip


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def finite(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


latlng = st.one_of(
    st.just([]),
    st.none(),
    st.tuples(finite(-90, 90), finite(-180, 180)).map(list),
    st.tuples(st.integers(-90, 90), st.integers(-180, 180)).map(list),  # ints are numbers too
)


@st.composite
def valid_activity(draw: st.DrawFn) -> dict[str, Any]:
    """A SummaryActivity as Strava sends it, anywhere in the plausible range."""
    start = draw(
        st.datetimes(
            min_value=datetime(1990, 1, 2),
            max_value=(NOW - timedelta(hours=1)).replace(tzinfo=None),
        )
    ).replace(microsecond=0, tzinfo=UTC)
    offset = timedelta(minutes=15 * draw(st.integers(-48, 56)))  # UTC-12 .. UTC+14
    moving = draw(st.integers(0, 30 * 86_400))
    elapsed = draw(st.integers(0, 30 * 86_400))  # above moving_time or not: both are kept
    sport = draw(st.sampled_from(SPORTS))
    hr = draw(st.booleans())
    rec: dict[str, Any] = {
        "id": draw(st.integers(1, 2**63 - 1)),
        "athlete": {"id": draw(st.integers(1, 2**63 - 1)), "resource_state": 1},
        "name": draw(clean_text.filter(lambda s: len(s) <= 2_000)),
        "type": sport,
        "sport_type": sport,
        "start_date": iso(start),
        "start_date_local": iso(start + offset),
        "timezone": "(GMT+01:00) Europe/Berlin",
        "distance": draw(finite(0, 2_000_000) | st.integers(0, 2_000_000)),
        "moving_time": moving,
        "elapsed_time": elapsed,
        "total_elevation_gain": draw(st.none() | finite(0, 100_000)),
        "average_speed": draw(st.none() | finite(0, 200)),
        "max_speed": draw(st.none() | finite(0, 500)),
        "has_heartrate": hr,
        "start_latlng": draw(latlng),
        "end_latlng": draw(latlng),
        "manual": draw(st.booleans()),
        "trainer": draw(st.booleans()),
        "commute": draw(st.booleans()),
        "private": draw(st.booleans()),
        "visibility": draw(st.sampled_from(["everyone", "followers_only", "only_me"])),
    }
    if hr:
        rec["average_heartrate"] = draw(finite(30, 260))
        rec["max_heartrate"] = draw(finite(30, 300))
    for key in draw(st.sets(st.sampled_from(OPTIONAL))):
        if draw(st.booleans()):
            rec.pop(key)  # optional fields may be missing, or null
        else:
            rec[key] = None
    extras = draw(
        st.dictionaries(clean_text.filter(lambda k: k not in CORE), json_value, max_size=3)
    )
    return {**extras, **rec}


def _without(*keys: str) -> Callable[[dict], dict]:
    return lambda rec: {k: v for k, v in rec.items() if k not in keys}


def _set(key: str, value: Any) -> Callable[[dict], dict]:
    return lambda rec: {**rec, key: value}


wrong_number = st.one_of(
    st.text(max_size=8), st.booleans(), st.lists(st.integers(), max_size=2), st.just({"x": 1})
)
bad_dates = st.one_of(
    st.datetimes(max_value=datetime(1989, 12, 31)).map(lambda d: iso(d.replace(tzinfo=UTC))),
    st.datetimes(min_value=(NOW + timedelta(days=3)).replace(tzinfo=None)).map(
        lambda d: iso(d.replace(tzinfo=UTC))
    ),
    st.just("1900-01-01T00:00:00Z"),
    st.just("0001-01-01T00:00:00+14:00"),
    st.just("2020-05-04T06:12:33"),  # no offset
    st.just("0000-00-00T00:00:00Z"),
    st.integers(0, 2**40),  # a Unix time is not what Strava sends
    st.none(),
    st.text(max_size=12),
)
bad_coordinate = st.one_of(
    st.tuples(
        st.floats(90, 1e300, exclude_min=True) | st.floats(-1e300, -90, exclude_max=True),
        finite(-180, 180),
    ).map(list),
    st.tuples(
        finite(-90, 90),
        st.floats(180, 1e300, exclude_min=True) | st.floats(-1e300, -180, exclude_max=True),
    ).map(list),
    st.lists(finite(-90, 90), min_size=1, max_size=1),
    st.lists(finite(-90, 90), min_size=3, max_size=4),
    st.tuples(st.text(max_size=4), st.text(max_size=4)).map(list),
    st.tuples(st.booleans(), st.booleans()).map(list),
    st.just([math.nan, 0.0]),
    st.just("48.1,11.5"),
)
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])


@st.composite
def hostile_activity(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid activity broken in one way, and the field the quarantine reason must name."""
    rec = draw(valid_activity())
    field, damage = draw(
        st.one_of(
            st.tuples(
                st.just("distance"),
                st.one_of(
                    st.floats(max_value=-1e-9).map(lambda v: _set("distance", v)),
                    st.floats(min_value=2_000_000.001).map(lambda v: _set("distance", v)),
                    non_finite.map(lambda v: _set("distance", v)),
                    wrong_number.map(lambda v: _set("distance", v)),
                ),
            ),
            st.tuples(
                st.just("start_date"),
                bad_dates.map(lambda v: _set("start_date", v)) | st.just(_without("start_date")),
            ),
            st.tuples(
                st.just("start_date_local"),
                st.sampled_from(["1900-01-01T00:00:00Z", "2999-01-01T00:00:00Z", 1, "noon"]).map(
                    lambda v: _set("start_date_local", v)
                ),
            ),
            st.tuples(
                st.sampled_from(["start_latlng", "end_latlng"]),
                bad_coordinate,
            ).map(lambda fv: (fv[0], _set(fv[0], fv[1]))),
            st.tuples(
                st.just("id"),
                st.one_of(
                    st.integers(max_value=0),
                    st.integers(min_value=2**63),
                    st.booleans(),
                    st.text(max_size=5),
                    st.floats(),
                    st.none(),
                ).map(lambda v: _set("id", v))
                | st.just(_without("id")),
            ),
            st.tuples(
                st.just("athlete"),
                st.one_of(
                    st.integers(2**63, 2**80).map(lambda i: {"id": i}),
                    st.integers(max_value=0).map(lambda i: {"id": i}),
                    st.sampled_from(["7", True, 7.5]).map(lambda i: {"id": i}),
                    st.text(max_size=3),
                    st.lists(st.integers(), max_size=2),
                ).map(lambda v: _set("athlete", v)),
            ),
            st.tuples(
                st.sampled_from(["moving_time", "elapsed_time"]),
                st.integers(max_value=-1) | st.integers(min_value=30 * 86_400 + 1) | wrong_number,
            ).map(lambda fv: (fv[0], _set(fv[0], fv[1]))),
            st.tuples(
                st.just("name"),
                st.one_of(
                    st.integers(2_001, 4_000).map(lambda n: "x" * n),
                    st.just("lone \ud800 surrogate"),
                    st.just("nul \x00 inside"),
                    st.integers() | st.lists(st.integers(), max_size=2),
                ).map(lambda v: _set("name", v)),
            ),
            st.tuples(
                st.sampled_from(["sport_type", "type"]),
                st.sampled_from([5, True, ["Run"], {"x": 1}, "R" * 201]),
            ).map(lambda fv: (fv[0], _set(fv[0], fv[1]))),
            st.tuples(
                st.sampled_from(["has_heartrate", "manual", "trainer", "commute", "private"]),
                st.sampled_from(["yes", 1, 0, "true", 1.0, []]),
            ).map(lambda fv: (fv[0], _set(fv[0], fv[1]))),
            st.tuples(
                st.sampled_from(["average_heartrate", "max_heartrate", "average_speed"]),
                st.floats(max_value=-0.001) | st.floats(min_value=1_000) | non_finite,
            ).map(lambda fv: (fv[0], _set(fv[0], fv[1]))),
            # garbage where the model does not look: still no NaN, NUL or surrogate anywhere
            st.tuples(
                st.just("kudos_garbage"),
                st.one_of(
                    non_finite.map(lambda v: {"deep": [[{"x": v}]]}),
                    st.just({"deep": [["\ud83d"]]}),
                    st.just(["a", {"b": "c\x00"}]),
                ).map(lambda v: _set("kudos_garbage", v)),
            ),
        )
    )
    return damage(rec), field


not_an_object = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), clean_text, st.lists(json_leaf)
)


# -- helpers ----------------------------------------------------------------------------------
def canonical(value: Any) -> str:
    """JSON text for comparisons (NaN == NaN here; surrogates escaped)."""
    return json.dumps(value, sort_keys=True)


def check_quarantined(q, record: Any, field: str | None) -> None:
    assert q.reason and q.reason.strip(), "a quarantine needs a reason"
    q.reason.encode()  # storable text, as is the payload
    assert isinstance(q.payload, str) and q.payload
    q.payload.encode()
    assert "\x00" not in q.payload and "\x00" not in q.reason
    if field is not None:
        assert field in q.reason, (field, q.reason)
    if len(q.payload) < 1_000_000:  # whole (bigger ones are cut, and say so)
        assert canonical(json.loads(q.payload)) == canonical(record)
    rid = record.get("id") if isinstance(record, dict) else None
    if isinstance(rid, int) and not isinstance(rid, bool) and -(2**63) <= rid < 2**63:
        assert q.activity_id == rid
    else:
        assert q.activity_id is None


def sent(rec: dict, key: str) -> Any:
    """What Strava sent for `key`, or what is stored when it is missing (absent or null)."""
    value = rec.get(key)
    return MISSING_DEFAULTS.get(key) if value is None else value


def expected_notes(rec: dict) -> list[str]:
    """The `data_quality` notes of a valid record, in the model's order."""
    notes = [DATA_QUALITY_NOTES[k] for k in MISSING_DEFAULTS if rec.get(k) is None]
    if rec.get("sport_type") is None:
        notes.append(
            DATA_QUALITY_NOTES["sport_type_and_type" if rec.get("type") is None else "sport_type"]
        )
    if rec.get("athlete") is None:
        notes.append(DATA_QUALITY_NOTES["athlete"])
    elif rec["athlete"].get("id") is None:
        notes.append(DATA_QUALITY_NOTES["athlete_id"])
    moving, elapsed = rec.get("moving_time"), rec.get("elapsed_time")
    if moving is not None and elapsed is not None and moving > elapsed:
        notes.append(f"moving_time {moving} s above elapsed_time {elapsed} s")
    return notes


def as_real(value: float | None) -> float | None:
    """A number as the seed's `real` (float4) columns of `runs` hold it."""
    return None if value is None else float(str(np.float32(value)))


def check_row(row: dict, rec: dict) -> None:
    """The mapped row carries the payload's key fields unchanged (stand-ins for missing ones):
    an `activity_row` under the Parquet names, or a `runs` row under the seed's names, with
    its reals as float4 and its heart rates rounded (the precise ones beside)."""
    db = "start_date_utc" in row
    real = as_real if db else (lambda v: v)
    assert row["strava_id"] == rec["id"]
    assert row["athlete_id"] == (rec.get("athlete") or {}).get("id")
    assert row["name"] == sent(rec, "name")
    sport_type = rec.get("sport_type")
    if sport_type is None:
        sport_type = UNKNOWN_SPORT_TYPE if rec.get("type") is None else rec["type"]
    assert row["sport_type"] == sport_type
    start_date = datetime.fromisoformat(rec["start_date"])
    assert row["start_date_utc" if db else "start_date"] == start_date
    assert row["distance_meters"] == real(sent(rec, "distance"))
    assert row["moving_time_seconds"] == sent(rec, "moving_time")
    assert row["elapsed_time_seconds"] == sent(rec, "elapsed_time")
    for flag in ("manual", "trainer", "commute", "private"):
        if flag in row:
            assert bool(row[flag]) is sent(rec, flag)  # SQLite reads 0 / 1
    start = rec.get("start_latlng") or [None, None]
    if db:
        assert [row["start_latitude"], row["start_longitude"]] == [real(v) for v in start]
        assert row["activity_type"] == (rec.get("type") or sport_type)
        local = rec.get("start_date_local")
        local = datetime.fromisoformat(local).replace(tzinfo=UTC) if local else start_date
        assert row["start_date_local"] == local
        for hr in ("average_heartrate_bpm", "max_heartrate_bpm"):
            precise = row[f"{hr}_precise"]
            assert row[hr] == (None if precise is None else round(precise))
    else:
        assert [row["start_lat"], row["start_lng"]] == start
    # jsonb keeps numbers as decimals (1e+16 comes back as 10000000000000000): compare values
    stored = row["payload"] if "payload" in row else row["strava_data"]
    assert decimal_json(stored) == decimal_json(json.dumps(rec))


def decimal_json(text: str) -> Any:
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


# -- 1. properties of validation and mapping ----------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(valid_activity())
def test_valid_activities_are_accepted_and_map_to_their_fields(rec) -> None:
    batch = validate_page([rec])
    assert batch.quarantined == [], batch.quarantined
    ((model, payload),) = batch.activities
    row = activity_row("u1", model, payload, FETCHED)
    check_row(row, rec)
    notes = expected_notes(rec)
    assert row["data_quality"] == (json.dumps(notes) if notes else None)
    table = activities_table([row])
    assert table.schema == ACTIVITY_SCHEMA and table.num_rows == 1
    (back,) = runs_rows(table)
    check_row(back, rec)
    assert json.loads(back["enrichment_status"]).get("data_quality") == (notes or None)


@settings(max_examples=300, deadline=None)
@given(hostile_activity())
def test_each_hostile_activity_is_quarantined_naming_the_field(case) -> None:
    rec, field = case
    batch = validate_page([rec])
    assert batch.activities == [], f"accepted although {field} is broken"
    (q,) = batch.quarantined
    check_quarantined(q, rec, field)
    assert quarantine_table("u1", batch.quarantined, FETCHED).schema == QUARANTINE_SCHEMA


tagged = st.one_of(
    valid_activity().map(lambda r: ("valid", r, None)),
    hostile_activity().map(lambda rf: ("hostile", rf[0], rf[1])),
    not_an_object.map(lambda r: ("object", r, None)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(tagged, max_size=12))
def test_a_mixed_page_loses_nothing_and_never_raises(page) -> None:
    records = [r for _, r, _ in page]
    batch = validate_page(records)
    assert len(batch.activities) + len(batch.quarantined) == len(records)
    assert [m.id for m, _ in batch.activities] == [r["id"] for k, r, _ in page if k == "valid"]
    rejected = [(r, f) for k, r, f in page if k != "valid"]
    assert len(rejected) == len(batch.quarantined)
    for q, (rec, field) in zip(batch.quarantined, rejected, strict=True):
        check_quarantined(q, rec, field)
    rows = [activity_row("u1", m, p, FETCHED) for m, p in batch.activities]
    assert activities_table(rows).num_rows == len(rows)
    assert quarantine_table("u1", batch.quarantined, FETCHED).num_rows == len(rejected)


def test_a_ten_megabyte_name_and_deep_nesting_are_quarantined() -> None:
    big = {"id": 5, "name": "x" * 10_000_000, "start_date": "2020-01-01T00:00:00Z"}
    deep: Any = "leaf"
    for _ in range(5_000):
        deep = [deep]
    nested = {"id": 6, "garbage": deep}
    batch = validate_page([big, nested])
    assert batch.activities == []
    first, second = batch.quarantined
    assert first.activity_id == 5 and "name" in first.reason and "bytes" in first.reason
    assert len(first.payload.encode()) <= 4_000_000 and first.payload.startswith('{"id": 5')
    assert second.activity_id == 6 and second.reason and second.payload


# -- 1b. accepted rows store into real PostgreSQL and SQLite -----------------------------------
@pytest.fixture
def two_stores(pg_url, tmp_path: Path) -> Iterator[tuple[PostgresStore, SqliteStore]]:
    cipher = TokenCipher([Fernet.generate_key().decode()])
    pg = PostgresStore(pg_url, cipher)
    pg.migrate()
    lite = SqliteStore(tmp_path / "db.sqlite", cipher)
    yield pg, lite
    pg.close()
    lite.close()


def _read_runs(pg: PostgresStore, lite: SqliteStore, url: str, user: str) -> list[dict]:
    query = (
        "select strava_id, athlete_id, name, activity_type, sport_type, start_date_utc,"
        " start_date_local, distance_meters, moving_time_seconds, elapsed_time_seconds,"
        " average_heartrate_bpm, average_heartrate_bpm_precise, max_heartrate_bpm,"
        " max_heartrate_bpm_precise, start_latitude, start_longitude, manual, trainer,"
        " commute, private, strava_data from runs where user_id = {} order by strava_id"
    )
    with psycopg.connect(url, row_factory=dict_row) as conn:
        pg_rows = conn.execute(query.format("%s"), (user,)).fetchall()
    with sqlite3.connect(lite.path) as conn:
        conn.row_factory = sqlite3.Row
        lite_rows = [dict(r) for r in conn.execute(query.format("?"), (user,))]
    for r in pg_rows:
        r["strava_data"] = json.dumps(r["strava_data"])
    for r in lite_rows:
        for column in ("start_date_utc", "start_date_local"):
            r[column] = datetime.fromisoformat(r[column].replace("Z", "+00:00"))
    return [pg_rows, lite_rows]


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(page=st.lists(tagged, max_size=8))
def test_accepted_rows_store_in_postgres_and_sqlite_and_quarantine_is_storable(
    two_stores, pg_url, page
) -> None:
    pg, lite = two_stores
    user = str(uuid.uuid4())
    add_users(pg_url, user)
    records = [r for _, r, _ in page]
    batch = validate_page(records)
    seen: set[int] = set()
    accepted = []  # Strava lists each activity once: one row per id
    for model, payload in batch.activities:
        if model.id not in seen:
            seen.add(model.id)
            accepted.append((model, payload))
    rows = runs_rows(activities_table([activity_row(user, m, p, FETCHED) for m, p in accepted]))
    invalid = [
        QuarantineRecord(user, q.activity_id, q.reason, q.payload) for q in batch.quarantined
    ]
    for store in (pg, lite):
        result = store.upsert_runs(rows)
        assert (result.saved, result.failed) == (len(rows), 0), result.errors
        assert store.quarantine(invalid) == len(invalid)
    truth = sorted((json.loads(p) for _, p in accepted), key=lambda r: r["id"])
    for stored in _read_runs(pg, lite, pg_url, user):
        assert len(stored) == len(truth)
        for row, rec in zip(stored, truth, strict=True):
            check_row(row, rec)


# -- 2. hostile records through the real pipeline (PostgreSQL) ---------------------------------
def _hostile_payloads(
    activities: list[dict], unstageable: bool = False
) -> dict[int, tuple[Any, str | None]]:
    """Served payloads in place of chosen real activities: (payload, field the reason names).

    `unstageable`: text no JSON column takes (a lone surrogate, NUL, NaN) instead."""
    a = {x["id"]: x for x in activities}
    ids = [x["id"] for x in activities]
    # Spread over the listing: early, on the first page's tail (where a far-future date would
    # move the listing's cursor past the rest), and later pages.
    pick = [ids[i] for i in (3, 17, 40, 77, 120, 150, 160, 190, 210, 260, 300, 330)]
    base = [a[i] for i in pick]
    if unstageable:
        cases: list[tuple[Any, str | None]] = [
            ({**base[0], "name": "broken \ud800 text"}, "name"),
            ({**base[1], "name": "nul \x00 byte"}, "name"),
            ({**base[2], "distance": math.nan}, "distance"),
        ]
    else:
        cases = [
            ({**base[0], "name": "x" * 10_000_000}, "name"),
            ({**base[1], "start_date": "1900-01-01T00:00:00Z"}, "start_date"),
            ({**base[2], "start_date": "2999-01-01T00:00:00Z"}, "start_date"),
            ({**base[3], "start_latlng": [123.45, 567.89]}, "start_latlng"),
            ({**base[4], "end_latlng": [0.0, -180.5]}, "end_latlng"),
            ({**base[5], "distance": "5.2 km"}, "distance"),
            ({**base[6], "moving_time": True}, "moving_time"),
            ({**base[7], "id": 2**70}, "id"),
            ({**base[8], "start_date_local": "1900-01-01T00:00:00Z"}, "start_date_local"),
            ("not an activity", None),
            ([1, 2, {"id": base[10]["id"]}], None),
            ({**base[11], "athlete": "someone"}, "athlete"),
        ]
    return {i: case for i, case in zip(pick, cases, strict=False)}


def _sync_with_hostile_records(pg_url, sandbox, server, tmp_path, unstageable: bool) -> None:
    data_dir = tmp_path / "data"
    resources = make_resources(sandbox, server, tmp_path, pg_url, data_dir)
    store = open_store(pg_url, data_dir)
    user, athlete = connect_user(store, sandbox, pg_url, 450)
    truth = sandbox.activities(athlete.athlete_id)
    hostile = _hostile_payloads(truth, unstageable)
    sandbox.set_faults(served_payloads={i: p for i, (p, _) in hostile.items()})
    first = month_key(datetime.fromisoformat(truth[0]["start_date"]))
    last = month_key(datetime.fromtimestamp(sandbox.now(), UTC))
    try:
        with instance_for_test() as instance:
            instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
            result = sync_range(instance, resources, user, first, last)
            assert result.success
            session = store.get_session(result.run_id, user)
        good = [x["id"] for x in truth if x["id"] not in hostile]
        assert sorted(store.run_ids(user)) == sorted(good)  # the rest, none twice
        assert session.status == "completed"
        assert session.activities_failed == len(hostile)
        assert session.activities_stored == len(good)
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute(
                "select strava_id, reason, payload, source from activity_quarantine"
                " where user_id = %s",
                (user,),
            ).fetchall()
        assert len(rows) == len(hostile) and {r[3] for r in rows} == {"validation"}
        by_id = {r[0]: r for r in rows}
        for payload, field in hostile.values():
            if not isinstance(payload, dict):
                continue
            pid = payload["id"]
            if pid >= 2**63:  # no usable id: found by its reason
                (row,) = [r for r in rows if r[0] is None and r[1].startswith("id:")]
            else:
                row = by_id[pid]
            assert field in row[1], (field, row[1])
            if field == "name" and len(payload["name"]) > 1_000_000:
                assert '"name": "xxxx' in row[2] and len(row[2]) == 1_000_000  # cut at 1 MB
            else:
                assert json.loads(row[2])["start_date"] == payload["start_date"]
        others = [r[1] for r in rows if r[0] is None]
        assert others.count("not a JSON object") == (0 if unstageable else 2)
    finally:
        close_stores()


def test_hostile_records_in_a_real_sync_are_quarantined_and_the_rest_stored(
    pg_url, sandbox, server, tmp_path, monkeypatch
) -> None:
    """A 10 MB name, dates in 1900 and 2999, coordinates off the globe, wrong types, an id
    past bigint and records that are not objects, on three pages of a PostgreSQL sync."""
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    _sync_with_hostile_records(pg_url, sandbox, server, tmp_path, unstageable=False)


def test_unstorable_text_in_a_real_sync_is_quarantined(
    pg_url, sandbox, server, tmp_path, monkeypatch
) -> None:
    """A lone surrogate, NUL or NaN: quarantined; the page is not checkpointed (neither
    database can hold it), the sync goes on."""
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    _sync_with_hostile_records(pg_url, sandbox, server, tmp_path, unstageable=True)


# -- 3. broken bodies from both APIs ------------------------------------------------------------
class Canned:
    """A tiny HTTP server on loopback serving canned answers, the last one repeated."""

    def __init__(self, answers: list[tuple[int, str, bytes, str]]) -> None:
        self.answers = list(answers)
        self.requests: list[str] = []
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                canned.requests.append(self.path)
                i = min(len(canned.requests), len(canned.answers)) - 1
                status, ctype, body, action = canned.answers[i]
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if action == "truncate":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                else:
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Canned:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


HTML_502 = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>nginx</center></body></html>"
)
HTML = "text/html"
JSON = "application/json; charset=utf-8"


def _hourly(**over: Any) -> bytes:
    t0 = int(datetime(2020, 6, 1, tzinfo=UTC).timestamp())
    hourly: dict[str, Any] = {"time": [t0 + 3600 * i for i in range(24)]}
    for v in OPEN_METEO_VARIABLES:
        hourly[v] = [1.0] * 24
    hourly.update(over)
    return json.dumps({"utc_offset_seconds": 0, "hourly": hourly}).encode()


# (name, answer, expected error type): what Open-Meteo (or a proxy in front) may send.
WEATHER_BODIES = [
    ("html-502", (502, HTML, HTML_502, "send"), ErrorType.SERVER),
    ("html-200", (200, HTML, b"<html><body>Service unavailable</body></html>", "send"), None),
    ("malformed-json", (200, JSON, b'{"hourly": {"time": [1,2,', "send"), None),
    ("truncated", (200, JSON, _hourly(), "truncate"), ErrorType.NETWORK),
    ("empty", (200, JSON, b"", "send"), None),
    ("hourly-is-a-string", (200, JSON, b'{"hourly": "x"}', "send"), None),
    ("no-arrays", (200, JSON, b'{"utc_offset_seconds": 0, "hourly": {}}', "send"), None),
    ("missing-one-array", (200, JSON, _hourly(weather_code=None), "send"), None),
    ("short-array", (200, JSON, _hourly(pressure_msl=[1.0]), "send"), None),
    ("text-values", (200, JSON, _hourly(temperature_2m=["hot"] * 24), "send"), None),
    ("nan-values", (200, JSON, _hourly(temperature_2m=[math.nan] * 24), "send"), None),
    ("absurd-time", (200, JSON, _hourly(time=[1e300] * 24), "send"), None),
    ("a-list-of-nothing", (200, JSON, b"[]", "send"), None),
    ("a-bare-string", (200, JSON, b'"hourly"', "send"), None),
    ("deep-nesting", (200, JSON, b"[" * 100_000 + b"]" * 100_000, "send"), None),
    ("invalid-utf8", (200, JSON, b'{"hourly": "\xff\xfe"}', "send"), None),
]


def _no_sleep(_: float) -> None:
    pass


@pytest.mark.parametrize(
    "answer,expected", [(a, e) for _, a, e in WEATHER_BODIES], ids=[n for n, _, _ in WEATHER_BODIES]
)
def test_broken_weather_bodies_are_classified_retried_and_end_clearly(answer, expected) -> None:
    with Canned([answer]) as srv:
        p = OpenMeteoProvider(
            srv.url, max_retries=2, backoff=(0.001, 0.002), sleep=_no_sleep, timeout=5
        )
        plan = p.plan({(51.5, -0.1): {datetime(2020, 6, 1, 9, tzinfo=UTC)}}, NOW.date())
        with pytest.raises(SyncError) as info:
            p.fetch(plan[0])
        err = info.value
        assert err.type == (expected or ErrorType.INVALID_RESPONSE), str(err)
        assert err.retryable
        assert len(srv.requests) == 3  # the first try and two retries
        assert p.stats.retries == 2
        assert err.message and p.name in err.message and srv.url not in err.message
        assert str(err).startswith(err.type.value + ": ")
        p.breaker.close()
        p.close()


def test_a_transient_broken_weather_body_is_retried_to_success() -> None:
    good = (200, JSON, _hourly(), "send")
    answers = [
        (502, HTML, HTML_502, "send"),
        (200, JSON, b'{"hourly": "x"}', "send"),
        (200, JSON, _hourly(), "truncate"),
        good,
    ]
    with Canned(answers) as srv:
        p = OpenMeteoProvider(srv.url, max_retries=3, backoff=(0.001, 0.002), sleep=_no_sleep)
        plan = p.plan({(51.5, -0.1): {datetime(2020, 6, 1, 9, tzinfo=UTC)}}, NOW.date())
        got = p.fetch(plan[0])
        assert len(got) == 24 and all(v and v.temperature_celsius == 1.0 for v in got.values())
        assert p.stats.errors_by_type == {"SERVER": 1, "INVALID_RESPONSE": 1, "NETWORK": 1}
        p.close()


def test_weather_sandbox_faults_are_retried_then_end_clearly_without_the_key(server) -> None:
    w = server.weather
    p = OpenMeteoProvider(
        server.weather_url, max_retries=3, backoff=(0.001, 0.002), sleep=_no_sleep
    )
    plan = p.plan({(48.9, 2.3): {datetime(2021, 3, 1, 7, tzinfo=UTC)}}, NOW.date())
    w.set_faults(error_5xx_next=2, malformed_next=1)  # 500 JSON, 502 HTML, then invalid JSON
    assert len(p.fetch(plan[0])) == 24
    assert p.stats.errors_by_type == {"SERVER": 2, "INVALID_RESPONSE": 1}
    w.set_faults(truncate_body_next=1)
    assert len(p.fetch(plan[0])) == 24
    w.set_faults(malformed_next=50)
    with pytest.raises(SyncError) as info:
        p.fetch(plan[0])
    assert info.value.type == ErrorType.INVALID_RESPONSE and info.value.retryable
    w.clear_faults()
    p.breaker.close()
    p.close()
    # OpenWeatherMap's key travels in the URL: a persistent broken body must not show it.
    key = w.owm_api_key
    owm = OpenWeatherMapProvider(
        key,
        server.openweathermap_url,
        max_retries=1,
        backoff=(0.001, 0.002),
        sleep=_no_sleep,
    )
    owm_plan = owm.plan({(48.9, 2.3): {datetime(2021, 3, 1, 7, tzinfo=UTC)}}, NOW.date())
    for faults in ({"truncate_body_next": 5}, {"malformed_next": 5}, {"error_5xx_next": 5}):
        w.set_faults(**faults)
        with pytest.raises(SyncError) as info:
            owm.fetch(owm_plan[0])
        assert info.value.retryable and key not in str(info.value)
        assert key not in json.dumps(info.value.info().model_dump(mode="json"))
        w.clear_faults()
    owm.breaker.close()
    owm.close()


def test_broken_openweathermap_shapes_are_invalid_responses() -> None:
    bodies = [b'{"data": ["x"]}', b'{"data": [{"temp": "warm"}]}', b'{"data": {}}', b"[1]"]
    for body in bodies:
        with Canned([(200, JSON, body, "send")]) as srv:
            p = OpenWeatherMapProvider(SECRET_KEY, srv.url, max_retries=0, sleep=_no_sleep)
            hour = datetime(2021, 3, 1, 7, tzinfo=UTC)
            (request,) = p.plan({(48.9, 2.3): {hour}}, NOW.date())
            if body == b'{"data": {}}':
                assert p.fetch(request) == {((48.9, 2.3), hour): None}  # no data: not invented
            else:
                with pytest.raises(SyncError) as info:
                    p.fetch(request)
                assert info.value.type == ErrorType.INVALID_RESPONSE, body
                assert SECRET_KEY not in str(info.value)
            p.breaker.close()
            p.close()


STRAVA_BODIES = [  # (name, answer, expected error type, requests until it gives up)
    ("html-502", (502, HTML, HTML_502, "send"), ErrorType.SERVER, 3),
    ("html-200", (200, HTML, b"<html><body>Login to the proxy</body></html>", "send"), None, 3),
    ("malformed-json", (200, JSON, b'[{"id": 1,', "send"), None, 3),
    ("truncated", (200, JSON, b'[{"id": 1, "name": "a"}]' * 10, "truncate"), ErrorType.NETWORK, 3),
    ("empty", (200, JSON, b"", "send"), None, 3),
    ("deep-nesting", (200, JSON, b"[" * 100_000 + b"]" * 100_000, "send"), None, 3),
    ("invalid-utf8", (200, JSON, b'[{"name": "\xff"}]', "send"), None, 3),
    # A complete JSON answer of the wrong shape: refused at once (retrying asks the same).
    ("an-object-not-a-list", (200, JSON, b'{"message": "Record Not Found"}', "send"), None, 1),
]


@pytest.mark.parametrize(
    "answer,expected,tries",
    [(a, e, n) for _, a, e, n in STRAVA_BODIES],
    ids=[b[0] for b in STRAVA_BODIES],
)
def test_broken_strava_bodies_are_classified_and_end_clearly(
    sandbox, server, token_store, connect_athlete, answer, expected, tries
) -> None:
    user, athlete = connect_athlete(5)
    with (
        Canned([answer]) as srv,
        StravaClient(
            user_id=user,
            client_id=sandbox.client_id,
            client_secret=SecretStr(sandbox.client_secret),
            token_store=token_store,
            budget=RateLimitBudget(max_wait_seconds=5),
            api_url=srv.url,  # the API answers broken bodies; OAuth is the sandbox's
            oauth_url=server.oauth_url,
            backoff_base_seconds=0.001,
            backoff_max_seconds=0.002,
            timeout_seconds=5.0,
            max_retries=2,
        ) as client,
    ):
        start = datetime(2000, 1, 1, tzinfo=UTC)
        with pytest.raises(SyncError) as info:
            list(client.iter_activity_pages(start, NOW + timedelta(days=1)))
        err = info.value
        assert err.type == (expected or ErrorType.INVALID_RESPONSE), str(err)
        assert err.retryable
        assert len(srv.requests) == tries
        text = str(err) + json.dumps(err.info().model_dump(mode="json"))
        assert athlete.access_token not in text and athlete.refresh_token not in text
        assert "/athlete/activities" in err.message


def test_strava_truncated_bodies_that_persist_end_as_a_network_error(
    sandbox, connect_athlete, make_client
) -> None:
    user, athlete = connect_athlete(50)
    sandbox.set_faults(truncate_body_next=100)
    client = make_client(user, max_retries=2)
    started = time.monotonic()
    with pytest.raises(SyncError) as info:
        list(client.iter_activity_pages(datetime(2000, 1, 1, tzinfo=UTC), NOW + timedelta(days=1)))
    assert info.value.type == ErrorType.NETWORK and info.value.retryable
    assert sandbox.request_count(kind="api") == 3
    assert athlete.access_token not in str(info.value)
    assert time.monotonic() - started < 10


def test_a_weather_api_of_the_wrong_shape_degrades_the_sync_not_crashes_it(
    pg_url, sandbox, server, tmp_path, monkeypatch
) -> None:
    """Open-Meteo answers `{"hourly": "x"}` to everything: the activities are stored, their
    weather is `failed` with the reason, and the run succeeds."""
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    data_dir = tmp_path / "data"
    with Canned([(200, JSON, b'{"hourly": "x"}', "send")]) as weather_api:
        resources = make_resources(
            sandbox,
            server,
            tmp_path,
            pg_url,
            data_dir,
            weather={"api_url": weather_api.url, "max_retries": 1},
        )
        store = open_store(pg_url, data_dir)
        user, athlete = connect_user(store, sandbox, pg_url, 120)
        truth = sandbox.activities(athlete.athlete_id)
        first = month_key(datetime.fromisoformat(truth[0]["start_date"]))
        last = month_key(datetime.fromtimestamp(sandbox.now(), UTC))
        try:
            with instance_for_test() as instance:
                instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
                result = sync_range(instance, resources, user, first, last)
                assert result.success
                assert store.get_session(result.run_id, user).status == "completed"
            with psycopg.connect(pg_url, row_factory=dict_row) as conn:
                rows = conn.execute(
                    "select strava_id, enrichment_status, temperature_celsius, city"
                    " from runs where user_id = %s",
                    (user,),
                ).fetchall()
            assert sorted(r["strava_id"] for r in rows) == sorted(a["id"] for a in truth)
            located = [r for r in rows if r["enrichment_status"]["weather_status"] != "no_location"]
            assert located and weather_api.requests
            for r in located:
                status = r["enrichment_status"]
                assert status["weather_status"] == "failed" and status["weather"] is False
                assert r["temperature_celsius"] is None and r["city"]  # geocoding is offline
                reason = status["weather_reason"]
                assert reason.startswith("INVALID_RESPONSE") or "circuit breaker" in reason
            assert any(
                r["enrichment_status"]["weather_reason"].startswith("INVALID_RESPONSE")
                and "unexpected shape" in r["enrichment_status"]["weather_reason"]
                for r in located
            )
        finally:
            resources["weather"].client().breaker.close()
            close_stores()
