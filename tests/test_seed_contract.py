"""The seed's database contract, column for column: `public.runs` and `public.sync_sessions`
have every column of the seed's CREATE TABLE statements (tests/data/seed_schema.sql, copied
from shared/design/seed-design.md) with its name, type, default and nullability, its
UNIQUE(user_id, strava_id) and its foreign keys; our own columns stand beside them.

Checked on a fresh PostgreSQL database, and on one created by the migrations before
20261201000200_seed_contract.sql, filled, then moved by it (no row lost, values kept); on
SQLite the column names (types stay SQLite's), fresh and migrated alike.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg.rows import dict_row, tuple_row

from sync_assets.core.migrations import (
    migrate_postgres,
    migrate_sqlite,
)
from sync_assets.core.storage import open_store
from sync_assets.core.storage.crypto import TokenCipher
from sync_assets.core.storage.postgres import PostgresStore

from .helpers import add_users, migrate_postgres_until, migrate_sqlite_until
from .test_storage import make_rows

FIXTURE = Path(__file__).parent / "data" / "seed_schema.sql"
DESIGN = Path(__file__).parents[2] / "shared" / "design" / "seed-design.md"
TABLES = ("runs", "sync_sessions")
# The migrations of the current main before the seed's contract (the shape databases had).
LAST_PG_BEFORE = "20261201000100"
LAST_SQLITE_BEFORE = "0010_listing_cursor.sql"
# Our columns beside the seed's (README: "The runs table"); nothing else may appear.
OURS = {
    "runs": {
        "athlete_id",
        "type",
        "sport_type",
        "manual",
        "trainer",
        "commute",
        "private",
        "visibility",
        "average_heartrate_bpm_precise",
        "max_heartrate_bpm_precise",
    },
    "sync_sessions": {"dagster_run_id", "activities_updated", "activities_skipped", "progress"},
}


# -- the seed's statements --------------------------------------------------------------------
def create_tables(text: str) -> dict[str, str]:
    """The `CREATE TABLE public.<name> (...);` statements of a text, verbatim, by table."""
    found = re.findall(r"^(CREATE TABLE public\.(\w+) \(.*?^\);)", text, flags=re.S | re.M)
    return {name: statement for statement, name in found}


@dataclass(frozen=True)
class Column:
    type: str
    default: str | None
    not_null: bool


@dataclass(frozen=True)
class ForeignKey:
    column: str
    references: str  # schema.table(column)
    on_delete: str  # 'cascade', 'set null', 'no action', ...


@dataclass(frozen=True)
class Table:
    columns: dict[str, Column]
    uniques: frozenset[tuple[str, ...]]
    foreign_keys: frozenset[ForeignKey]


TYPE_ALIASES = {
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "float4": "real",
    "float8": "double precision",
    "int4": "integer",
    "int": "integer",
    "int8": "bigint",
    "bool": "boolean",
}


def norm_type(text: str) -> str:
    text = " ".join(text.lower().split())
    return TYPE_ALIASES.get(text, text)


def norm_default(text: str | None) -> str | None:
    """A default as PostgreSQL shows it (`'Run'::text`) or as written (`'Run'`): the same."""
    if text is None:
        return None
    text = text.strip()
    while True:
        stripped = re.sub(r"::[a-z_ ]+(\[\])?$", "", text)
        if stripped == text:
            break
        text = stripped.strip()
    if text.startswith("'") and text.endswith("'"):
        literal = text[1:-1].replace("''", "'")
        try:  # a JSON literal compares by value, whatever its spacing
            return "json:" + json.dumps(json.loads(literal), sort_keys=True)
        except ValueError:
            return "'" + literal + "'"
    return text.lower()


def split_top_level(body: str) -> list[str]:
    """The comma-separated items of a CREATE TABLE body (commas in quotes or parentheses
    belong to their item)."""
    items, depth, quoted, current = [], 0, False, []
    for ch in body:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [i.strip() for i in items if i.strip()]


def parse_create_table(statement: str) -> Table:
    body = statement[statement.index("(") + 1 : statement.rindex(")")]
    body = "\n".join(line.split("--", 1)[0] for line in body.splitlines())  # comments out
    columns: dict[str, Column] = {}
    uniques: set[tuple[str, ...]] = set()
    fks: set[ForeignKey] = set()
    for item in split_top_level(body):
        unique = re.fullmatch(r"UNIQUE\s*\(([^)]*)\)", item, flags=re.I)
        if unique:
            uniques.add(tuple(c.strip() for c in unique.group(1).split(",")))
            continue
        name, type_, rest = (item.split(None, 2) + [""])[:3]
        default = re.search(
            r"\bDEFAULT\s+(.+?)(?=\s+(?:NOT\s+NULL|NULL|REFERENCES|PRIMARY\s+KEY|UNIQUE)\b|$)",
            rest,
            flags=re.I | re.S,
        )
        primary = re.search(r"\bPRIMARY\s+KEY\b", rest, flags=re.I) is not None
        ref = re.search(
            r"\bREFERENCES\s+([\w.]+)\s*\((\w+)\)(?:\s+ON\s+DELETE\s+(CASCADE|SET\s+NULL|RESTRICT"
            r"|NO\s+ACTION|SET\s+DEFAULT))?",
            rest,
            flags=re.I,
        )
        if ref:
            on_delete = " ".join((ref.group(3) or "no action").lower().split())
            fks.add(ForeignKey(name, f"{ref.group(1)}({ref.group(2)})", on_delete))
        columns[name] = Column(
            norm_type(type_),
            norm_default(default.group(1)) if default else None,
            primary or re.search(r"\bNOT\s+NULL\b", rest, flags=re.I) is not None,
        )
    return Table(columns, frozenset(uniques), frozenset(fks))


def seed() -> dict[str, Table]:
    statements = create_tables(FIXTURE.read_text())
    assert set(statements) == set(TABLES)
    return {name: parse_create_table(statement) for name, statement in statements.items()}


# -- what a database has ----------------------------------------------------------------------
ON_DELETE = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}


def pg_table(conn: psycopg.Connection, name: str) -> Table:
    columns = {
        r["name"]: Column(norm_type(r["type"]), norm_default(r["default"]), r["not_null"])
        for r in conn.cursor(row_factory=dict_row).execute(
            "select a.attname as name, format_type(a.atttypid, a.atttypmod) as type,"
            " pg_get_expr(d.adbin, d.adrelid) as default, a.attnotnull as not_null"
            " from pg_attribute a left join pg_attrdef d"
            "   on d.adrelid = a.attrelid and d.adnum = a.attnum"
            " where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped",
            (f"public.{name}",),
        )
    }
    constraints = (
        conn.cursor(row_factory=tuple_row)
        .execute(
            "select c.contype, c.confdeltype, c.confrelid::regclass::text,"
            " array(select attname from unnest(c.conkey) with ordinality k(n, i)"
            "       join pg_attribute on attrelid = c.conrelid and attnum = k.n order by k.i),"
            " array(select attname from unnest(c.confkey) with ordinality k(n, i)"
            "       join pg_attribute on attrelid = c.confrelid and attnum = k.n order by k.i)"
            " from pg_constraint c where c.conrelid = %s::regclass and c.contype in ('u', 'f')",
            (f"public.{name}",),
        )
        .fetchall()
    )
    uniques = frozenset(tuple(cols) for kind, _, _, cols, _ in constraints if kind == "u")
    fks = frozenset(
        ForeignKey(cols[0], f"{target}({ref[0]})", ON_DELETE[action])
        for kind, action, target, cols, ref in constraints
        if kind == "f"
    )
    return Table(columns, uniques, fks)


def sqlite_table(conn: sqlite3.Connection, name: str) -> Table:
    columns = {
        r[1]: Column(norm_type(r[2]), norm_default(r[4]), bool(r[3] or r[5]))
        for r in conn.execute(f"PRAGMA table_info({name})")
    }
    uniques = frozenset(
        tuple(c[2] for c in conn.execute(f"PRAGMA index_info('{idx[1]}')"))
        for idx in conn.execute(f"PRAGMA index_list({name})")
        if idx[2]
    )
    fks = frozenset(
        ForeignKey(r[3], f"{r[2]}({r[4]})", r[6].lower())
        for r in conn.execute(f"PRAGMA foreign_key_list({name})")
    )
    return Table(columns, uniques, fks)


def compare(name: str, want: Table, have: Table, *, names_only: bool = False) -> str:
    """Assert `have` holds every seed column as `want` says; return the one-line summary."""
    missing = sorted(set(want.columns) - set(have.columns))
    assert not missing, f"{name}: seed columns missing: {missing}"
    if not names_only:
        wrong = {
            column: (spec, have.columns[column])
            for column, spec in want.columns.items()
            if have.columns[column] != spec
        }
        assert not wrong, f"{name}: columns unlike the seed's (seed, ours): {wrong}"
    extra = sorted(set(have.columns) - set(want.columns))
    assert set(extra) == OURS[name], f"{name}: extra columns {extra}"
    what = "name" if names_only else "name, type, default, null"
    return (
        f"{name}: {len(want.columns)} seed columns match ({what}); "
        f"{len(extra)} extra columns: {', '.join(extra)}"
    )


def check_postgres(conn: psycopg.Connection) -> list[str]:
    wanted, lines = seed(), []
    for name in TABLES:
        have = pg_table(conn, name)
        lines.append(compare(name, wanted[name], have))
        assert wanted[name].uniques <= have.uniques, (name, have.uniques)
        assert wanted[name].foreign_keys <= have.foreign_keys, (name, have.foreign_keys)
        lines.append(
            f"{name}: unique {sorted(have.uniques)}; foreign keys "
            + ", ".join(
                f"{f.column} -> {f.references} on delete {f.on_delete}"
                for f in sorted(have.foreign_keys, key=lambda f: f.column)
            )
        )
    # Ours beside the seed's: the row names the session that last wrote it.
    assert ForeignKey("sync_session_id", "sync_sessions(id)", "set null") in {
        ForeignKey(f.column, f.references.removeprefix("public."), f.on_delete)
        for f in pg_table(conn, "runs").foreign_keys
    }
    return lines


def check_sqlite(conn: sqlite3.Connection) -> list[str]:
    wanted, lines = seed(), []
    for name in TABLES:
        have = sqlite_table(conn, name)
        lines.append("sqlite " + compare(name, wanted[name], have, names_only=True))
    assert ("user_id", "strava_id") in sqlite_table(conn, "runs").uniques
    assert ForeignKey("sync_session_id", "sync_sessions(id)", "set null") in (
        sqlite_table(conn, "runs").foreign_keys
    )
    return lines


def as_real(value: float) -> float:
    """A double as the seed's `real` columns hold it (float4, read back as its shortest
    decimal)."""
    return float(str(np.float32(value)))


# -- the fixture and the design document --------------------------------------------------------
def test_the_fixture_is_the_seeds_statements_verbatim() -> None:
    statements = create_tables(FIXTURE.read_text())
    assert list(statements) == list(TABLES)
    head = FIXTURE.read_text().split("\nCREATE TABLE", 1)[0]
    assert "seed-design.md" in head and "Clean Slate Database Schema" in head
    # Where the design document is beside the project (../shared, as for CI), the copy must
    # still be the document's; elsewhere the fixture is the contract on its own.
    if DESIGN.exists():
        assert create_tables(DESIGN.read_text()) == statements


def test_the_parser_reads_the_seeds_columns() -> None:
    runs, sessions = seed()["runs"], seed()["sync_sessions"]
    assert len(runs.columns) == 37 and len(sessions.columns) == 22
    assert runs.columns["activity_type"] == Column("text", "'Run'", True)
    assert runs.columns["enrichment_status"] == Column(
        "jsonb", 'json:{"geocoding": false, "weather": false}', True
    )
    assert runs.columns["id"] == Column("uuid", "gen_random_uuid()", True)
    assert runs.columns["start_date_utc"] == Column("timestamp with time zone", None, True)
    assert runs.columns["strava_data"] == Column("jsonb", None, False)
    assert sessions.columns["checkpoint_data"] == Column("jsonb", None, False)
    assert sessions.columns["activities_fetched"] == Column("integer", "0", False)
    assert runs.uniques == {("user_id", "strava_id")}
    assert runs.foreign_keys == {ForeignKey("user_id", "auth.users(id)", "cascade")}
    assert sessions.foreign_keys == {ForeignKey("user_id", "auth.users(id)", "cascade")}


# -- PostgreSQL -------------------------------------------------------------------------------
def test_a_fresh_postgres_database_has_the_seeds_columns(pg_url) -> None:
    with psycopg.connect(pg_url) as conn:
        migrate_postgres(conn)
    with psycopg.connect(pg_url) as conn:
        lines = check_postgres(conn)
    print("\n" + "\n".join(lines))


OLD_RUNS = 500  # generated rows beside the two chosen ones
OLD_SESSIONS = 4


def test_a_database_of_the_current_main_moves_to_the_seeds_columns_keeping_its_rows(
    pg_url,
) -> None:
    user = str(uuid.uuid4())
    with psycopg.connect(pg_url, autocommit=True) as conn:
        migrate_postgres_until(conn, LAST_PG_BEFORE)
        conn.execute("insert into auth.users (id) values (%s)", (user,))
        # Two chosen rows, in the old columns, then many generated ones.
        conn.execute(
            "insert into public.runs (user_id, strava_id, athlete_id, name, type, sport_type,"
            " start_date, start_date_local, timezone, distance_meters, moving_time_seconds,"
            " elapsed_time_seconds, average_speed_mps, max_speed_mps, average_heartrate_bpm,"
            " max_heartrate_bpm, start_lat, start_lng, end_lat, end_lng, humidity_percent,"
            " wind_speed_mps, wind_direction_degrees, visibility_meters, temperature_celsius,"
            " strava_data, enrichment_status, created_at, updated_at) values"
            " (%(u)s, 1, 9, 'Morning Run', null, 'TrailRun', '2024-05-01T06:00:00Z',"
            "  '2024-05-01T08:00:00', 'Europe/Berlin', 10234.56789, 3000, 3100, 3.41156,"
            "  5.123456789, 142.3, 171.5, 52.5200081, 13.404954, 52.51, 13.4, 64.5, 3.25, 270.5,"
            "  24140.4, 12.3, '{\"id\": 1}', '{\"weather\": true}', '2024-05-02T00:00:00Z',"
            "  '2024-05-03T00:00:00Z'),"
            " (%(u)s, 2, 9, '', 'Ride', 'EBikeRide', '2024-05-03T06:00:00Z', null, null, 0, 0,"
            "  0, null, null, null, null, null, null, null, null, null, null, null, null, null,"
            "  '{\"id\": 2}', '{}', '2024-05-04T00:00:00Z', '2024-05-04T00:00:00Z')",
            {"u": user},
        )
        conn.execute(
            "insert into public.runs (user_id, strava_id, name, type, sport_type, start_date,"
            " start_date_local, distance_meters, moving_time_seconds, elapsed_time_seconds,"
            " average_heartrate_bpm, strava_data)"
            " select %s, 100 + i, 'run ' || i, 'Run', 'Run',"
            "  timestamptz '2020-01-01Z' + i * interval '1 day',"
            "  timestamp '2020-01-01 02:00' + i * interval '1 day', 1000.5 * i, i, i + 1,"
            "  120 + i / 10.0, jsonb_build_object('id', 100 + i)"
            " from generate_series(1, %s) as i",
            (user, OLD_RUNS),
        )
        conn.execute(
            "insert into public.sync_sessions (user_id, dagster_run_id, sync_type, status,"
            " window_start, window_end, activities_fetched, activities_stored,"
            " activities_updated, activities_skipped, activities_failed, progress, last_error,"
            " updated_at) values"
            " (%(u)s, 'done', 'backfill', 'completed', '2016-01-01Z', '2017-01-01Z', 700, 690,"
            "  0, 0, 10, '{\"phase\": \"completed\"}', null, '2024-01-01Z'),"
            " (%(u)s, 'broke', 'incremental', 'failed', '2024-01-01Z', '2024-02-01Z', 200, 0,"
            '  0, 0, 1, \'{"phase": "storing_data"}\', \'{"type": "DATABASE"}\','
            "  '2024-02-01Z'),"
            " (%(u)s, 'weather', 'enrichment', 'enriching_weather', null, null, 0, 0, 3, 4, 0,"
            "  '{\"phase\": \"enriching_weather\"}', null, '2024-03-01Z'),"
            " (%(u)s, 'new', 'manual', 'initiated', null, null, 0, 0, 0, 0, 0, '{}', null,"
            "  '2024-04-01Z')",
            {"u": user},
        )
        before = {t: conn.execute(f"select count(*) from public.{t}").fetchone()[0] for t in TABLES}
        old_updated = dict(conn.execute("select strava_id, updated_at from public.runs").fetchall())
    assert before == {"runs": OLD_RUNS + 2, "sync_sessions": OLD_SESSIONS}

    with psycopg.connect(pg_url) as conn:
        # The seed's contract first; migrations written after it follow.
        assert migrate_postgres(conn)[0] == "20261201000200_seed_contract.sql"
    with psycopg.connect(pg_url, row_factory=dict_row) as conn:
        lines = check_postgres(conn)
        after = {
            t: conn.execute(f"select count(*) as n from public.{t}").fetchone()["n"] for t in TABLES
        }
        runs = {r["strava_id"]: r for r in conn.execute("select * from public.runs")}
        sessions = {
            r["dagster_run_id"]: r for r in conn.execute("select * from public.sync_sessions")
        }
    print("\n" + "\n".join(lines))
    print(f"rows before the migration {before}, after {after}")
    assert after == before

    first, second = runs[1], runs[2]
    assert first["start_date_utc"] == datetime(2024, 5, 1, 6, tzinfo=UTC)
    assert first["start_date_local"] == datetime(2024, 5, 1, 8, tzinfo=UTC)  # wall clock, "Z"
    assert second["start_date_local"] == second["start_date_utc"]  # none sent: the UTC start
    assert (first["activity_type"], second["activity_type"]) == ("TrailRun", "Ride")
    assert (first["type"], first["sport_type"]) == (None, "TrailRun")  # ours, as they were
    assert (first["average_heartrate_bpm"], first["average_heartrate_bpm_precise"]) == (142, 142.3)
    assert (first["max_heartrate_bpm"], first["max_heartrate_bpm_precise"]) == (172, 171.5)
    assert first["distance_meters"] == as_real(10234.56789)
    assert first["average_speed_ms"] == as_real(3.41156)
    assert first["max_speed_ms"] == as_real(5.123456789)
    assert (first["start_latitude"], first["start_longitude"]) == (
        as_real(52.5200081),
        as_real(13.404954),
    )
    assert (first["end_latitude"], first["end_longitude"]) == (52.51, 13.4)
    assert (first["humidity_percent"], first["wind_direction_degrees"]) == (64, 270)  # to even
    assert (first["visibility_meters"], first["wind_speed_ms"]) == (24140, 3.25)
    assert first["temperature_celsius"] == 12.3
    assert (first["strava_data"], first["enrichment_status"]) == ({"id": 1}, {"weather": True})
    assert first["sync_session_id"] is None
    assert {k: r["updated_at"] for k, r in runs.items()} == old_updated  # no trigger fired
    for i in (1, 7):
        assert runs[100 + i]["average_heartrate_bpm_precise"] == pytest.approx(120 + i / 10)
    assert runs[107]["average_heartrate_bpm"] == 121  # 120.7

    done, broke, weather, new = (sessions[k] for k in ("done", "broke", "weather", "new"))
    assert (done["time_range_start"], done["time_range_end"]) == (
        datetime(2016, 1, 1, tzinfo=UTC),
        datetime(2017, 1, 1, tzinfo=UTC),
    )
    assert [s["current_phase"] for s in (done, broke, weather, new)] == [
        "completed",
        "storing",  # the phase it failed in
        "enriching",
        "fetching",
    ]
    assert [s["total_activities_estimated"] for s in (done, broke, weather, new)] == [
        700,
        200,
        7,
        0,
    ]
    assert [s["error_count"] for s in (done, broke, weather, new)] == [10, 2, 0, 0]
    assert done["last_activity_at"] == done["updated_at"] == datetime(2024, 1, 1, tzinfo=UTC)
    assert done["sync_type"] == "backfill" and done["checkpoint_data"] == {}

    # The pipeline works on the moved database: new rows name their session.
    store = PostgresStore(pg_url, TokenCipher([Fernet.generate_key().decode()]))
    try:
        session = store.create_session(
            run_id="after",
            user_id=user,
            sync_type="backfill",
            time_range_start=None,
            time_range_end=None,
        )
        assert (session.current_phase, session.error_count, session.checkpoint_data) == (
            "fetching",
            0,
            {},
        )
        result = store.upsert_runs(make_rows(user, 30), session_id=session.id)
        assert (result.saved, result.failed) == (30, 0)
    finally:
        store.close()
    with psycopg.connect(pg_url) as conn:
        assert (
            conn.execute(
                "select count(*) from public.runs where sync_session_id = %s", (session.id,)
            ).fetchone()[0]
            == 30
        )


def test_the_seeds_defaults_fill_a_row_the_front_end_could_write(pg_url) -> None:
    """Only what the seed makes NOT NULL without a default is needed (plus our own)."""
    user = str(uuid.uuid4())
    with psycopg.connect(pg_url, row_factory=dict_row) as conn:
        migrate_postgres(conn)
        conn.execute("insert into auth.users (id) values (%s)", (user,))
        run = conn.execute(
            "insert into public.runs (user_id, strava_id, name, sport_type, distance_meters,"
            " moving_time_seconds, elapsed_time_seconds, start_date_utc, start_date_local)"
            " values (%s, 1, 'x', 'Run', 1, 1, 1, now(), now()) returning *",
            (user,),
        ).fetchone()
        session = conn.execute(
            "insert into public.sync_sessions (user_id, dagster_run_id) values (%s, 'r')"
            " returning *",
            (user,),
        ).fetchone()
    assert run["activity_type"] == "Run"
    assert run["enrichment_status"] == {"weather": False, "geocoding": False}
    assert run["strava_data"] is None and run["created_at"] is not None
    assert (session["sync_type"], session["status"], session["current_phase"]) == (
        "full",
        "initiated",
        "fetching",
    )
    assert session["total_activities_estimated"] == session["error_count"] == 0
    assert session["checkpoint_data"] is None and session["last_activity_at"] is not None


# -- SQLite -----------------------------------------------------------------------------------
def test_a_fresh_sqlite_database_has_the_seeds_column_names(tmp_path) -> None:
    conn = sqlite3.connect(tmp_path / "fresh.db", isolation_level=None)
    try:
        migrate_sqlite(conn)
        lines = check_sqlite(conn)
    finally:
        conn.close()
    print("\n" + "\n".join(lines))


def test_a_sqlite_database_of_the_current_main_moves_to_the_seeds_column_names(
    tmp_path,
) -> None:
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        migrate_sqlite_until(conn, LAST_SQLITE_BEFORE)
        conn.execute(
            "INSERT INTO runs (id, user_id, strava_id, name, type, sport_type, start_date,"
            " start_date_local, distance_meters, moving_time_seconds, elapsed_time_seconds,"
            " average_speed_mps, average_heartrate_bpm, max_heartrate_bpm, start_lat, start_lng,"
            " humidity_percent, wind_speed_mps, strava_data, updated_at) VALUES"
            " ('a', 'u', 1, 'Morning Run', NULL, 'TrailRun', '2024-05-01T06:00:00Z',"
            "  '2024-05-01T08:00:00', 10234.5, 3000, 3100, 3.41, 142.3, 171.5, 52.52, 13.4,"
            "  64.5, 3.25, '{\"id\": 1}', '2024-05-03T00:00:00.000Z'),"
            " ('b', 'u', 2, '', 'Ride', 'EBikeRide', '2024-05-03T06:00:00Z', NULL, 0, 0, 0,"
            "  NULL, NULL, NULL, NULL, NULL, NULL, NULL, '{\"id\": 2}',"
            "  '2024-05-04T00:00:00.000Z')"
        )
        conn.executemany(
            "INSERT INTO runs (id, user_id, strava_id, name, type, sport_type, start_date,"
            " distance_meters, moving_time_seconds, elapsed_time_seconds, strava_data)"
            " VALUES (?, 'u', ?, 'run', 'Run', 'Run', ?, 1000.0, 1, 1, '{}')",
            [(f"g{i}", 100 + i, f"2020-01-{1 + i % 28:02d}T06:00:00Z") for i in range(OLD_RUNS)],
        )
        conn.execute(
            "INSERT INTO sync_sessions (id, user_id, dagster_run_id, status, window_start,"
            " window_end, activities_fetched, activities_failed, progress, last_error,"
            " updated_at) VALUES"
            " ('s1', 'u', 'done', 'completed', '2016-01-01T00:00:00Z', '2017-01-01T00:00:00Z',"
            "  700, 10, '{\"phase\": \"completed\"}', NULL, '2024-01-01T00:00:00.000Z'),"
            " ('s2', 'u', 'broke', 'failed', NULL, NULL, 200, 1,"
            '  \'{"phase": "storing_data"}\', \'{"type": "DATABASE"}\','
            "  '2024-02-01T00:00:00.000Z')"
        )
        before = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        assert migrate_sqlite(conn)[0] == "0011_seed_contract.sql"  # later ones follow
        lines = check_sqlite(conn)
        after = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        runs = {r["strava_id"]: dict(r) for r in conn.execute("SELECT * FROM runs")}
        sessions = {
            r["dagster_run_id"]: dict(r) for r in conn.execute("SELECT * FROM sync_sessions")
        }
    finally:
        conn.close()
    print("\n" + "\n".join(lines))
    print(f"sqlite rows before the migration {before}, after {after}")
    assert before == after == {"runs": OLD_RUNS + 2, "sync_sessions": 2}
    first, second = runs[1], runs[2]
    assert first["start_date_utc"] == "2024-05-01T06:00:00Z"
    assert first["start_date_local"] == "2024-05-01T08:00:00Z"
    assert second["start_date_local"] == second["start_date_utc"]
    assert (first["activity_type"], second["activity_type"]) == ("TrailRun", "Ride")
    assert (first["average_heartrate_bpm"], first["average_heartrate_bpm_precise"]) == (142, 142.3)
    assert (first["max_heartrate_bpm"], first["max_heartrate_bpm_precise"]) == (172, 171.5)
    assert (first["start_latitude"], first["start_longitude"]) == (52.52, 13.4)
    assert (first["average_speed_ms"], first["wind_speed_ms"]) == (3.41, 3.25)
    assert first["humidity_percent"] == 64  # half to even
    assert first["updated_at"] == "2024-05-03T00:00:00.000Z"  # no trigger fired
    done, broke = sessions["done"], sessions["broke"]
    assert (done["time_range_start"], done["time_range_end"]) == (
        "2016-01-01T00:00:00Z",
        "2017-01-01T00:00:00Z",
    )
    assert (done["current_phase"], broke["current_phase"]) == ("completed", "storing")
    assert (done["total_activities_estimated"], broke["total_activities_estimated"]) == (700, 200)
    assert (done["error_count"], broke["error_count"]) == (10, 2)
    assert done["last_activity_at"] == done["updated_at"] == "2024-01-01T00:00:00.000Z"


# -- both backends ------------------------------------------------------------------------------
def test_each_row_names_the_session_that_last_wrote_it(backend) -> None:
    """sync_session_id: the session whose upsert inserted or changed the row; a session that
    found the row unchanged leaves it be; deleting the session leaves the row, unnamed."""
    url, data_dir = backend
    store = open_store(url, data_dir)
    user = str(uuid.uuid4())
    if url:
        add_users(url, user)
    one = store.create_session(
        run_id="one",
        user_id=user,
        sync_type="backfill",
        time_range_start=None,
        time_range_end=None,
    )
    two = store.create_session(
        run_id="two",
        user_id=user,
        sync_type="incremental",
        time_range_start=None,
        time_range_end=None,
    )
    rows = make_rows(user, 20)
    assert store.upsert_runs(rows, session_id=one.id).saved == 20
    edited = [{**r, "name": r["name"] + " (edited)"} if i < 5 else r for i, r in enumerate(rows)]
    result = store.upsert_runs(edited, session_id=two.id)
    assert (result.saved, result.updated, result.skipped) == (0, 5, 15)

    def by_session() -> dict[str | None, int]:
        query = "select sync_session_id, count(*) from runs where user_id = {} group by 1"
        if url:
            with psycopg.connect(url) as conn:
                got = conn.execute(query.format("%s"), (user,)).fetchall()
            return {(str(k) if k else None): n for k, n in got}
        with sqlite3.connect(data_dir / "sync_assets.db") as conn:
            return dict(conn.execute(query.format("?"), (user,)).fetchall())

    assert by_session() == {one.id: 15, two.id: 5}
    if url:  # the foreign key: ON DELETE SET NULL
        with psycopg.connect(url) as conn:
            conn.execute("delete from public.sync_sessions where id = %s", (two.id,))
        assert by_session() == {one.id: 15, None: 5}
