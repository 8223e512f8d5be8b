"""Every payload Strava's official API description allows is stored, never quarantined.

Strava's SummaryActivity (developers.strava.com, swagger `activity.json`) makes every field
optional; its own examples send `null` coordinates and polylines and integers where floats are
typed, and real accounts have activities without `distance` or with `moving_time` above
`elapsed_time`. Each such shape is stored, with what was missing or odd noted in
`data_quality` (and in `enrichment_status`), through the models, the real sandbox over HTTP,
the real client, and both real stores; the sandbox's own athletes carry these shapes too.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.fernet import Fernet
from sync_assets_sandbox import NO_DISTANCE_SPORTS, SPORTS, generate_activities
from upath import UPath

from sync_assets.core.clients.weather import OpenMeteoProvider
from sync_assets.core.enrichment.activities import ENRICHED_SCHEMA, enrich_tables
from sync_assets.core.models import (
    ACTIVITY_SCHEMA,
    UNKNOWN_SPORT_TYPE,
    activities_table,
    activity_row,
    validate_page,
)
from sync_assets.core.storage import close_stores, open_store, runs_rows
from sync_assets.resources.parquet_io import (
    ACTIVITIES_FILE,
    QUARANTINE_FILE,
    PartitionedParquetIOManager,
)

from .helpers import add_users

FETCHED = datetime(2026, 1, 2, tzinfo=UTC)


# Strava's official API description, as vendored for the conformance test (source named in
# tests/data/strava_schema/README.md): its enums and its own example payloads.
SCHEMAS = Path(__file__).parent / "data" / "strava_schema"
_SUMMARY = json.loads((SCHEMAS / "SummaryActivity.json").read_text())["$defs"]
SPORT_TYPES: list[str] = _SUMMARY["SportType"]["enum"]
ACTIVITY_TYPES: list[str] = _SUMMARY["ActivityType"]["enum"]  # the legacy `type`
# Sport types Strava may add later: any short label is stored as sent.
FUTURE_SPORT_TYPES = ["Hyrox", "Paddleboarding2", "Ski Touring", "ウォーキング", "E-Foil"]
VISIBILITIES = ["everyone", "followers_only", "only_me", "subscribers_only"]
FLAGS = ["manual", "trainer", "commute", "private", "has_heartrate"]

# The two SummaryActivity examples of "List Athlete Activities" in Strava's API description.
_SWAGGER = json.loads((SCHEMAS / "strava_swagger.json").read_text())
OFFICIAL_EXAMPLES: list[dict[str, Any]] = _SWAGGER["paths"]["/athlete/activities"]["get"][
    "responses"
]["200"]["examples"]["application/json"]
# What a payload with a route has on top (the examples are trainer rides without one).
OUTDOOR = {
    "trainer": False,
    "start_latlng": [37.77, -122.42],
    "end_latlng": [37.8, -122.45],
    "map": {
        "id": "a1",
        "summary_polyline": "ki{eFvqfiVqAWQIGEEKAYJgBVqDJ{BHa@",
        "resource_state": 2,
    },
    "visibility": "everyone",
}


def example(**over: Any) -> dict[str, Any]:
    return {**copy.deepcopy(OFFICIAL_EXAMPLES[0]), **OUTDOOR, **over}


def without(*keys: str) -> Callable[[dict], dict]:
    return lambda rec: {k: v for k, v in rec.items() if k not in keys}


def store_one(rec: dict[str, Any]) -> dict[str, Any]:
    """The record through validation and mapping: its `raw_strava_activities` row."""
    batch = validate_page([rec])
    assert batch.quarantined == [], batch.quarantined
    ((model, payload),) = batch.activities
    assert json.loads(payload) == rec  # verbatim
    return activity_row("u1", model, payload, FETCHED)


def notes_of(row: dict[str, Any]) -> list[str]:
    return json.loads(row["data_quality"]) if row["data_quality"] is not None else []


# -- 1. each shape: stored, with the right values and the right note ---------------------------
SHAPES: list[tuple[str, Callable[[dict], dict], dict[str, Any], list[str]]] = [
    ("no distance", without("distance"), {"distance_meters": 0.0}, ["distance missing"]),
    ("distance null", lambda r: {**r, "distance": None}, {"distance_meters": 0.0},
     ["distance missing"]),
    ("no moving_time", without("moving_time"), {"moving_time_seconds": 0},
     ["moving_time missing"]),
    ("no elapsed_time", without("elapsed_time"), {"elapsed_time_seconds": 0},
     ["elapsed_time missing"]),
    ("no times", without("moving_time", "elapsed_time"),
     {"moving_time_seconds": 0, "elapsed_time_seconds": 0},
     ["moving_time missing", "elapsed_time missing"]),
    ("no name", without("name"), {"name": ""}, ["name missing"]),
    ("name null", lambda r: {**r, "name": None}, {"name": ""}, ["name missing"]),
    ("no sport_type", without("sport_type"), {"sport_type": "Ride", "type": "Ride"},
     ["sport_type missing, taken from type"]),
    ("no sport_type nor type", without("sport_type", "type"),
     {"sport_type": UNKNOWN_SPORT_TYPE, "type": None},
     ["sport_type and type missing, stored as Unknown"]),
    ("sport_type and type null", lambda r: {**r, "sport_type": None, "type": None},
     {"sport_type": "Unknown", "type": None}, ["sport_type and type missing, stored as Unknown"]),
    ("no type", without("type"), {"sport_type": "MountainBikeRide", "type": None}, []),
    ("no athlete", without("athlete"), {"athlete_id": None}, ["athlete missing"]),
    ("athlete null", lambda r: {**r, "athlete": None}, {"athlete_id": None}, ["athlete missing"]),
    ("athlete without id", lambda r: {**r, "athlete": {"resource_state": 1}},
     {"athlete_id": None}, ["athlete id missing"]),
    *[
        (f"{flag} null", lambda r, f=flag: {**r, f: None}, {flag: False},
         [f"{flag} missing, read as false"])
        for flag in FLAGS
    ],
    ("no has_heartrate", without("has_heartrate"),
     {"has_heartrate": False, "average_heartrate_bpm": None},
     ["has_heartrate missing, read as false"]),
    ("moving_time above elapsed_time", lambda r: {**r, "moving_time": 4000, "elapsed_time": 3600},
     {"moving_time_seconds": 4000, "elapsed_time_seconds": 3600},
     ["moving_time 4000 s above elapsed_time 3600 s"]),
    ("moving_time a few seconds above", lambda r: {**r, "moving_time": 3601, "elapsed_time": 3600},
     {"moving_time_seconds": 3601}, ["moving_time 3601 s above elapsed_time 3600 s"]),
    ("coordinates null", lambda r: {**r, "start_latlng": None, "end_latlng": None},
     {"start_lat": None, "start_lng": None, "end_lat": None, "end_lng": None}, []),
    ("coordinates []", lambda r: {**r, "start_latlng": [], "end_latlng": []},
     {"start_lat": None, "end_lng": None}, []),
    ("integer coordinates", lambda r: {**r, "start_latlng": [45, 7], "end_latlng": [-33, 151]},
     {"start_lat": 45.0, "start_lng": 7.0, "end_lat": -33.0, "end_lng": 151.0}, []),
    ("summary_polyline null", lambda r: {**r, "map": {**r["map"], "summary_polyline": None}},
     {}, []),
    ("map null", lambda r: {**r, "map": None}, {}, []),
    ("no map", without("map"), {}, []),
    ("integers for floats", lambda r: {
        **r, "distance": 24931, "average_speed": 5, "max_speed": 11, "average_heartrate": 140,
        "max_heartrate": 178, "total_elevation_gain": 0, "utc_offset": -25200,
     }, {"distance_meters": 24931.0, "average_speed_mps": 5.0, "max_speed_mps": 11.0,
         "average_heartrate_bpm": 140.0, "max_heartrate_bpm": 178.0,
         "total_elevation_gain_meters": 0.0}, []),
    ("the official example as sent", lambda r: copy.deepcopy(OFFICIAL_EXAMPLES[0]),
     {"trainer": True, "start_lat": None, "max_speed_mps": 11.0, "sport_type": "MountainBikeRide",
      "strava_id": 154504250376823, "athlete_id": 134815}, []),
    ("the second official example", lambda r: copy.deepcopy(OFFICIAL_EXAMPLES[1]),
     {"name": "Bondcliff", "athlete_id": 167560}, []),
    ("an unknown future sport_type", lambda r: {**r, "sport_type": "Hyrox", "type": "Workout"},
     {"sport_type": "Hyrox", "type": "Workout"}, []),
    ("a new legacy type", lambda r: {**r, "type": "Pickleball", "sport_type": "Pickleball"},
     {"type": "Pickleball"}, []),
    ("device_name and hide_from_home",
     lambda r: {**r, "device_name": "Garmin Forerunner 255", "hide_from_home": True}, {}, []),
    ("device_name and hide_from_home null",
     lambda r: {**r, "device_name": None, "hide_from_home": None}, {}, []),
    ("an unknown visibility", lambda r: {**r, "visibility": "subscribers_only"},
     {"visibility": "subscribers_only"}, []),
    ("visibility null", lambda r: {**r, "visibility": None}, {"visibility": None}, []),
    ("no timezone nor local time", without("timezone", "start_date_local", "utc_offset"),
     {"timezone": None, "start_date_local": None}, []),
    ("a yoga session as some accounts have it",
     lambda r: {k: v for k, v in r.items() if k not in ("distance", "map")}
     | {"sport_type": "Yoga", "type": "Yoga", "start_latlng": None, "end_latlng": None,
        "average_speed": 0, "max_speed": 0, "total_elevation_gain": 0},
     {"sport_type": "Yoga", "distance_meters": 0.0, "average_speed_mps": 0.0},
     ["distance missing"]),
    ("only an id and a start", lambda r: {"id": 77, "start_date": "2021-03-04T05:06:07Z"},
     {"strava_id": 77, "athlete_id": None, "name": "", "sport_type": "Unknown", "type": None,
      "distance_meters": 0.0, "moving_time_seconds": 0, "elapsed_time_seconds": 0,
      "manual": False, "trainer": False, "commute": False, "private": False,
      "has_heartrate": False, "start_lat": None, "visibility": None},
     ["name missing", "distance missing", "moving_time missing", "elapsed_time missing",
      "manual missing, read as false", "trainer missing, read as false",
      "commute missing, read as false", "private missing, read as false",
      "has_heartrate missing, read as false", "sport_type and type missing, stored as Unknown",
      "athlete missing"]),
]  # fmt: skip


@pytest.mark.parametrize(
    "change,expected,notes", [s[1:] for s in SHAPES], ids=[s[0] for s in SHAPES]
)
def test_each_spec_shape_is_stored_with_its_note(change, expected, notes) -> None:
    rec = change(example())
    row = store_one(rec)
    for key, value in expected.items():
        assert row[key] == value, key
        if isinstance(value, float):
            assert isinstance(row[key], float), key
    assert notes_of(row) == notes
    (stored,) = runs_rows(activities_table([row]))
    status = json.loads(stored["enrichment_status"])
    assert status.get("data_quality") == (notes or None)
    assert status["reason"] == "not enriched"


@pytest.mark.parametrize("sport_type", SPORT_TYPES + FUTURE_SPORT_TYPES)
def test_every_official_and_future_sport_type_is_stored(sport_type) -> None:
    row = store_one(example(sport_type=sport_type, type="Workout"))
    assert row["sport_type"] == sport_type and row["data_quality"] is None
    legacy = store_one(example(type=sport_type)) if sport_type in ACTIVITY_TYPES else None
    assert legacy is None or legacy["type"] == sport_type


def test_what_cannot_be_stored_is_still_quarantined() -> None:
    """The protections stay: no usable id or start, impossible types and ranges."""
    cases: list[tuple[str, Callable[[dict], dict]]] = [
        ("id", without("id")),
        ("id", lambda r: {**r, "id": "154504250376823"}),
        ("start_date", without("start_date")),
        ("start_date", lambda r: {**r, "start_date": None}),
        ("start_date", lambda r: {**r, "start_date": "2018-05-02T12:15:09"}),  # no offset
        ("start_date", lambda r: {**r, "start_date": 1525263309}),
        ("distance", lambda r: {**r, "distance": "24.9 km"}),
        ("distance", lambda r: {**r, "distance": -1.0}),
        ("moving_time", lambda r: {**r, "moving_time": "1:15:00"}),
        ("elapsed_time", lambda r: {**r, "elapsed_time": 4500.5}),
        ("trainer", lambda r: {**r, "trainer": 1}),
        ("private", lambda r: {**r, "private": "false"}),
        ("start_latlng", lambda r: {**r, "start_latlng": [91.0, 7.0]}),
        ("end_latlng", lambda r: {**r, "end_latlng": [45.0]}),
        ("max_speed", lambda r: {**r, "max_speed": -3}),
        ("athlete", lambda r: {**r, "athlete": "134815"}),
        ("athlete", lambda r: {**r, "athlete": {"id": "134815"}}),
        ("sport_type", lambda r: {**r, "sport_type": 12}),
        ("name", lambda r: {**r, "name": 12}),
    ]
    batch = validate_page([change(example()) for _, change in cases])
    assert batch.activities == []
    assert len(batch.quarantined) == len(cases)
    for q, (field, _) in zip(batch.quarantined, cases, strict=True):
        assert field in q.reason, (field, q.reason)


# -- 2. ~600 spec-shaped payloads through the sandbox, the client and both stores -----------------
def _variations(base: dict[str, Any]) -> list[tuple[str, Callable[[dict], dict]]]:
    """Each optional field dropped, each set to null, integers for floats, every sport type,
    visibility values, the later fields present, absent or null."""
    out: list[tuple[str, Callable[[dict], dict]]] = []
    for key in base:
        if key in ("id", "start_date"):
            continue
        out.append((f"drop {key}", without(key)))
        out.append((f"null {key}", lambda r, k=key: {**r, k: None}))
    out += [
        ("polyline null",
         lambda r: {**r, "map": {**(r.get("map") or {}), "summary_polyline": None}}),
        ("coordinates []", lambda r: {**r, "start_latlng": [], "end_latlng": []}),
        ("integers", lambda r: {
            **r,
            **{k: round(v) for k, v in r.items() if isinstance(v, float)},
            "start_latlng": [45, 7], "end_latlng": [46, 8],
        }),
        ("moving above elapsed", lambda r: {**r, "moving_time": 4000, "elapsed_time": 3600}),
        ("device_name", lambda r: {**r, "device_name": "Zwift", "hide_from_home": False}),
        ("hide_from_home", lambda r: {**r, "hide_from_home": True}),
        ("indoor", lambda r: {
            **r, "trainer": True, "start_latlng": None, "end_latlng": None, "distance": 0,
            "map": {"id": "a1", "summary_polyline": None, "resource_state": 2},
        }),
    ]  # fmt: skip
    out += [(f"sport_type {s}", lambda r, s=s: {**r, "sport_type": s}) for s in SPORT_TYPES]
    out += [(f"future {s}", lambda r, s=s: {**r, "sport_type": s}) for s in FUTURE_SPORT_TYPES]
    out += [(f"type {t}", lambda r, t=t: {**r, "type": t}) for t in ACTIVITY_TYPES[::4]]
    out += [(f"visibility {v}", lambda r, v=v: {**r, "visibility": v}) for v in VISIBILITIES]
    return out


def _spec_payloads(generated: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Variations of both official examples (distinct ids and start seconds, so that keyset
    listing has no ties), and of the athlete's own generated activities (same ids)."""
    payloads = []
    next_id = 9_100_000_000_000
    for official in OFFICIAL_EXAMPLES:
        payloads.append(copy.deepcopy(official))
        start = datetime.fromisoformat(official["start_date"])
        for i, (_, change) in enumerate(_variations(official)):
            rec = change(copy.deepcopy(official))
            rec["id"], next_id = next_id, next_id + 1
            moved = start + timedelta(hours=7 * (i + 1), seconds=next_id % 60)
            rec["start_date"] = moved.strftime("%Y-%m-%dT%H:%M:%SZ")
            if rec.get("start_date_local") is not None:
                local = moved + timedelta(hours=-7)
                rec["start_date_local"] = local.strftime("%Y-%m-%dT%H:%M:%SZ")
            payloads.append(rec)
    for i, activity in enumerate(generated):
        variations = _variations(activity)
        _, change = variations[(i * 7) % len(variations)]
        payloads.append(change(copy.deepcopy(activity)))
    return payloads


def _stored_notes_sqlite(path: Path, user: str) -> dict[int, list[str] | None]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "select strava_id, enrichment_status from runs where user_id = ?", (user,)
        ).fetchall()
    return {sid: json.loads(status).get("data_quality") for sid, status in rows}


def _stored_notes_pg(url: str, user: str) -> dict[int, list[str] | None]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select strava_id, enrichment_status -> 'data_quality' from runs where user_id = %s",
            (user,),
        ).fetchall()
    return dict(rows)


def test_six_hundred_spec_shaped_payloads_over_http_are_all_stored(
    sandbox, server, connect_athlete, make_client, data_dir, pg_url, monkeypatch
) -> None:
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    user = str(uuid.uuid4())
    user, athlete = connect_athlete(240, user_id=user)
    payloads = _spec_payloads(sandbox.activities(athlete.athlete_id))
    served = {}
    for rec in payloads:
        sandbox.add_activity(athlete.athlete_id, rec)
        if "athlete" not in rec or "private" not in rec:
            served[rec["id"]] = rec  # add_activity fills these two in: serve it as it is
    sandbox.set_faults(served_payloads=served)
    assert len({r["id"] for r in payloads}) == len(payloads) >= 600

    client = make_client(user)
    before = datetime.fromtimestamp(sandbox.now(), UTC) + timedelta(days=1)
    listed = [
        rec
        for page in client.iter_activity_pages(datetime(2000, 1, 1, tzinfo=UTC), before)
        for rec in page.records
    ]
    assert sorted(r["id"] for r in listed) == sorted(r["id"] for r in payloads)
    by_id = {r["id"]: r for r in payloads}
    assert all(rec == by_id[rec["id"]] for rec in listed)  # served as given

    batch = validate_page(listed)
    share = len(batch.activities) / len(listed)
    print(f"\nspec-shaped payloads stored: {len(batch.activities)}/{len(listed)} ({share:.1%})")
    assert batch.quarantined == [], batch.quarantined[:3]
    rows = [activity_row(user, m, p, FETCHED) for m, p in batch.activities]
    noted = {r["strava_id"]: notes_of(r) for r in rows if r["data_quality"] is not None}
    reasons = Counter(n.split(" ")[0] for notes in noted.values() for n in notes)
    assert {"distance", "moving_time", "name", "sport_type", "athlete", "private"} <= set(reasons)
    table = activities_table(rows)
    assert table.schema == ACTIVITY_SCHEMA

    add_users(pg_url, user)
    try:
        for url in (None, pg_url):
            store = open_store(url, data_dir)
            result = store.upsert_runs(runs_rows(table))
            assert (result.saved, result.failed) == (len(rows), 0), result.errors[:3]
            assert sorted(store.run_ids(user)) == sorted(by_id)
            if url is None:
                notes = _stored_notes_sqlite(data_dir / "sync_assets.db", user)
            else:
                notes = _stored_notes_pg(url, user)
            assert {k: v for k, v in notes.items() if v is not None} == noted
    finally:
        close_stores()


# -- 3. the sandbox's own athletes carry every shape, and all of it validates ---------------------
def test_a_large_generated_athlete_has_every_shape_and_validates_fully() -> None:
    acts = generate_activities(11, 4242, 3_000, end=datetime(2026, 6, 1, tzinfo=UTC))
    assert acts == generate_activities(11, 4242, 3_000, end=datetime(2026, 6, 1, tzinfo=UTC))
    for a in acts:  # within the official schema: enums, LatLng of exactly two numbers
        assert a["sport_type"] in SPORT_TYPES and a["type"] in ACTIVITY_TYPES, a["sport_type"]
        for key in ("start_latlng", "end_latlng"):
            assert a[key] is None or (
                len(a[key]) == 2 and all(type(x) in (int, float) for x in a[key])
            )
        assert a["map"]["summary_polyline"] is None or a["map"]["summary_polyline"]
        assert isinstance(a.get("device_name", ""), str)
    no_route = [a for a in acts if a["start_latlng"] is None]
    assert no_route and any(a["manual"] for a in no_route) and any(a["trainer"] for a in no_route)
    assert all(a["map"]["summary_polyline"] is None for a in no_route)
    no_distance = [a for a in acts if "distance" not in a]
    assert no_distance
    assert {a["sport_type"] for a in no_distance} <= NO_DISTANCE_SPORTS
    assert 1 <= sum(a["moving_time"] > a["elapsed_time"] for a in acts) <= 0.015 * len(acts)
    assert any(isinstance(a.get("max_heartrate"), int) for a in acts)
    assert any(isinstance(a.get("total_elevation_gain"), int) for a in acts)
    devices = Counter(a.get("device_name") for a in acts if a["external_id"])
    assert {"Zwift", "Strava App"} <= set(devices) and len(devices) >= 4
    assert all("device_name" not in a for a in acts if a["manual"])
    flags = Counter(a["hide_from_home"] for a in acts)
    assert flags[True] and flags[False]
    common = {s.sport_type for s in SPORTS}
    rare = Counter(a["sport_type"] for a in acts if a["sport_type"] not in common)
    assert len(rare) >= 5 and sum(rare.values()) <= 0.05 * len(acts)

    batch = validate_page(acts)
    assert batch.quarantined == [] and len(batch.activities) == len(acts)
    rows = [activity_row("u1", m, p, FETCHED) for m, p in batch.activities]
    noted = Counter(n for r in rows for n in notes_of(r) if not n.startswith("moving_time "))
    assert noted == {"distance missing": len(no_distance)}
    odd = [a for a in acts if "distance" not in a or a["moving_time"] > a["elapsed_time"]]
    assert sum(notes_of(r) != [] for r in rows) == len(odd)


# -- notes reach enrichment_status; files written before the column still read -------------------
def _old(table: pa.Table) -> pa.Table:
    return table.drop_columns(["data_quality"])


def test_notes_reach_enrichment_status_and_old_files_still_read_and_enrich(
    server, tmp_path, data_dir
) -> None:
    recs = [
        example(id=1, start_date="2021-06-01T07:00:00Z", start_date_local="2021-06-01T00:00:00Z"),
        {k: v for k, v in example(id=2).items() if k != "distance"},
        example(id=3, start_latlng=None, end_latlng=None, moving_time=4000, elapsed_time=3600),
    ]
    batch = validate_page(recs)
    new = activities_table([activity_row("u1", m, p, FETCHED) for m, p in batch.activities])
    old = _old(new)

    io = PartitionedParquetIOManager(base_path=UPath(tmp_path / "parquet"))
    folders = {}
    for name, table in (("new", new), ("old", old)):
        folder = UPath(tmp_path / "parquet" / name)
        folder.mkdir(parents=True)
        pq.write_table(table, str(folder / ACTIVITIES_FILE))
        folders[name] = folder
    loaded = {name: io.load_from_path(None, folder) for name, folder in folders.items()}
    assert loaded["new"].activities.schema.names == ACTIVITY_SCHEMA.names
    assert loaded["old"].activities.schema.names == ACTIVITY_SCHEMA.names  # added, null
    assert loaded["old"].activities.schema == loaded["new"].activities.schema
    assert loaded["old"].activities.column("data_quality").null_count == 3
    assert (
        loaded["old"].quarantine.num_rows == 0 and not (folders["old"] / QUARANTINE_FILE).exists()
    )

    store = open_store(None, data_dir)
    provider = OpenMeteoProvider(server.weather_url, max_retries=1, backoff=(0.001, 0.002))
    try:
        enriched, report = enrich_tables(
            {name: part.activities for name, part in loaded.items()}, provider, store
        )
    finally:
        provider.close()
        close_stores()
    assert report.activities == 6
    statuses = {
        name: [json.loads(s) for s in table.column("enrichment_status").to_pylist()]
        for name, table in enriched.items()
    }
    assert [s.get("data_quality") for s in statuses["new"]] == [
        None,
        ["distance missing"],
        ["moving_time 4000 s above elapsed_time 3600 s"],
    ]
    assert all("data_quality" not in s for s in statuses["old"])  # no column: no notes
    assert statuses["new"][2]["weather_status"] == "no_location"
    assert enriched["old"].schema == ENRICHED_SCHEMA

    # An enriched file written before the column, next to a new one: both read, and concatenate.
    read_back = []
    for name, table in (("old-enriched", _old(enriched["old"])), ("new-enriched", enriched["new"])):
        folder = UPath(tmp_path / "parquet" / name)
        folder.mkdir(parents=True)
        pq.write_table(table, str(folder / ACTIVITIES_FILE))
        read_back.append(io.load_from_path(None, folder).activities)
    assert read_back[0].schema.names == ENRICHED_SCHEMA.names
    assert read_back[0].schema == read_back[1].schema
    both = pa.concat_tables(read_back)
    rows = runs_rows(both)
    assert [json.loads(r["enrichment_status"]).get("data_quality") for r in rows] == [
        None,
        None,
        None,
        None,
        ["distance missing"],
        ["moving_time 4000 s above elapsed_time 3600 s"],
    ]
    assert all("data_quality" not in r for r in rows)  # public.runs has no such column
    raw_rows = runs_rows(loaded["old"].activities)  # a raw table of an old file: no notes
    assert all("data_quality" not in json.loads(r["enrichment_status"]) for r in raw_rows)
