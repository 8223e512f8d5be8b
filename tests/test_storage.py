"""The storage contract, run against both backends, and what only PostgreSQL has (RLS)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from cryptography.fernet import Fernet
from sync_assets_sandbox import generate_activities

from sync_assets.core.clients.tokens import StravaTokens
from sync_assets.core.enrichment.activities import ENRICHED_SCHEMA
from sync_assets.core.models import activities_table, activity_row, validate_page
from sync_assets.core.storage import Store, postgres, runs_rows
from sync_assets.core.storage.base import RUNS_COLUMNS, RUNS_SCHEMA, runs_table
from sync_assets.core.storage.crypto import TokenCipher
from sync_assets.core.storage.postgres import PostgresStore
from sync_assets.core.storage.sqlite import SqliteStore

from .helpers import add_users
from .pg import ADMIN_URL

KEY = Fernet.generate_key().decode()


def make_rows(user_id: str, n: int, seed: int = 1) -> list[dict]:
    acts = generate_activities(seed, 99, n, end=datetime(2026, 1, 1, tzinfo=UTC))
    batch = validate_page(acts)
    now = datetime(2026, 1, 2, tzinfo=UTC)
    table = activities_table([activity_row(user_id, a, p, now) for a, p in batch.activities])
    return runs_rows(table)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path: Path) -> Iterator[tuple[Store, str | None]]:
    cipher = TokenCipher([KEY])
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "db.sqlite", cipher)
        yield s, None
        s.close()
    else:
        url = request.getfixturevalue("pg_url")
        s = PostgresStore(url, cipher)
        s.migrate()
        yield s, url
        s.close()


def new_user(url: str | None) -> str:
    uid = str(uuid.uuid4())
    if url:
        add_users(url, uid)
    return uid


def tokens(tag: str, expires_at: int = 2_000_000_000) -> StravaTokens:
    return StravaTokens(access_token=f"at-{tag}", refresh_token=f"rt-{tag}", expires_at=expires_at)


def test_tokens_round_trip_encrypted_at_rest(store) -> None:
    s, url = store
    uid = new_user(url)
    s.save_connection(uid, tokens("secret-1"), athlete_id=42, scopes="read,activity:read_all")
    conn = s.get(uid)
    assert conn.tokens.access_token.get_secret_value() == "at-secret-1"
    assert conn.athlete_id == 42 and conn.status == "active"
    raw = _raw_connection(s, url, uid)
    assert "secret-1" not in json.dumps(raw)
    assert Fernet(KEY.encode()).decrypt(raw["refresh_token_encrypted"].encode()) == b"rt-secret-1"
    assert "secret-1" not in repr(conn)


def _raw_connection(s: Store, url: str | None, uid: str) -> dict:
    query = (
        "select access_token_encrypted, refresh_token_encrypted from strava_connections "
        f"where user_id = '{uid}'"
    )
    if url:
        with psycopg.connect(url) as c:
            row = c.execute(query).fetchone()
    else:
        import sqlite3

        with sqlite3.connect(s.path) as c:
            row = c.execute(query).fetchone()
    return {"access_token_encrypted": row[0], "refresh_token_encrypted": row[1]}


def test_concurrent_refreshes_of_one_user_happen_once(store) -> None:
    s, url = store
    uid = new_user(url)
    s.save_connection(uid, tokens("old", expires_at=0))
    refreshes = []

    def refresh(current: StravaTokens) -> StravaTokens:
        if current.expires_at > 0:  # someone else refreshed while we waited for the lock
            return current
        time.sleep(0.3)
        refreshes.append(1)
        return tokens("new")

    threads = [threading.Thread(target=s.update_tokens, args=(uid, refresh)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(refreshes) == 1
    assert s.get(uid).tokens.refresh_token.get_secret_value() == "rt-new"


def test_revoked_connection_stops_syncs(store) -> None:
    from sync_assets.core.errors import AuthenticationError

    s, url = store
    uid = new_user(url)
    s.save_connection(uid, tokens("a"))
    s.mark_revoked(uid, "refresh token rejected")
    with pytest.raises(AuthenticationError, match="revoked"):
        s.get(uid)
    assert [c.status for c in s.list_connections(status=None)] == ["revoked"]
    assert s.list_connections() == []


def test_key_rotation(store) -> None:
    s, url = store
    uid = new_user(url)
    s.save_connection(uid, tokens("k"))
    new_key = Fernet.generate_key().decode()
    s._cipher = TokenCipher([new_key, KEY])  # deploy: new key first, old key still readable
    assert s.rotate_keys() == 1
    s._cipher = TokenCipher([new_key])  # the old key can go
    assert s.get(uid).tokens.access_token.get_secret_value() == "at-k"


def test_upsert_is_idempotent_and_skips_unchanged_rows(store) -> None:
    s, url = store
    uid = new_user(url)
    rows = make_rows(uid, 300)
    first = s.upsert_runs(rows)
    assert (first.saved, first.updated, first.skipped, first.failed) == (len(rows), 0, 0, 0)
    again = s.upsert_runs(rows)
    assert (again.saved, again.updated, again.skipped) == (0, 0, len(rows))
    changed = [dict(r) for r in rows]
    for r in changed[:3]:
        r["name"] = r["name"] + " (edited)"
    third = s.upsert_runs(changed)
    assert (third.saved, third.updated, third.skipped) == (0, 3, len(rows) - 3)
    assert s.run_ids(uid) == [r["strava_id"] for r in rows]


def test_an_activity_deleted_on_strava_is_never_stored_again(store) -> None:
    s, url = store
    uid = new_user(url)
    rows = make_rows(uid, 20)
    s.upsert_runs(rows)
    gone = rows[5]["strava_id"]
    assert s.delete_run(uid, gone) == 1
    assert s.delete_run(uid, gone) == 0  # a redelivered delete event changes nothing
    # A run that fetched it before the deletion, or an enrichment re-run reading older Parquet,
    # stores the batch again: the deleted activity stays deleted, the rest is untouched.
    again = s.upsert_runs(rows)
    assert (again.saved, again.updated, again.skipped, again.failed) == (0, 0, 20, 0)
    assert gone not in s.run_ids(uid) and len(s.run_ids(uid)) == 19
    other = new_user(url)  # tombstones are per user: another user's id space is untouched
    assert s.upsert_runs(make_rows(other, 20)).saved == 20


def test_rows_a_complete_listing_did_not_return_are_deleted_in_its_window_only(store) -> None:
    s, url = store
    uid = new_user(url)
    rows = make_rows(uid, 60)
    s.upsert_runs(rows)
    starts = sorted(r["start_date_utc"] for r in rows)
    window_start, window_end = starts[10], starts[50]  # rows 10..49 are inside
    inside = [r["strava_id"] for r in rows if window_start <= r["start_date_utc"] < window_end]
    listed = inside[5:]  # the listing no longer returns the first five of the window
    before = datetime(2000, 1, 1, tzinfo=UTC)  # a listing older than every row: keeps all
    assert s.delete_unlisted_runs(uid, window_start, window_end, listed, before) == 0
    after = datetime.now(UTC) + timedelta(seconds=1)
    assert s.delete_unlisted_runs(uid, window_start, window_end, listed, after) == 5
    left = set(s.run_ids(uid))
    assert not left & set(inside[:5]) and len(left) == 55  # outside the window: untouched
    other = new_user(url)
    s.upsert_runs(make_rows(other, 60))
    assert s.delete_unlisted_runs(uid, window_start, window_end, listed, after) == 0
    assert len(s.run_ids(other)) == 60  # another user's rows are never in the window


def test_a_bad_row_is_quarantined_and_the_rest_stored(store) -> None:
    s, url = store
    uid = new_user(url)
    rows = make_rows(uid, 50)
    rows[10] = {**rows[10], "distance_meters": -5.0}  # the database's CHECK refuses it
    result = s.upsert_runs(rows)
    assert (result.saved, result.failed) == (49, 1)
    assert "distance_meters" in result.errors[0] or "check" in result.errors[0].lower()
    assert rows[10]["strava_id"] not in s.run_ids(uid)
    assert len(s.run_ids(uid)) == 49
    quarantined = _quarantine(s, url, uid)
    assert [q[0] for q in quarantined] == [rows[10]["strava_id"]]
    assert json.loads(quarantined[0][1])["id"] == rows[10]["strava_id"]


def _quarantine(s: Store, url: str | None, uid: str) -> list[tuple]:
    query = f"select strava_id, payload, reason from activity_quarantine where user_id = '{uid}'"
    if url:
        with psycopg.connect(url) as c:
            return c.execute(query).fetchall()
    import sqlite3

    with sqlite3.connect(s.path) as c:
        return c.execute(query).fetchall()


def test_sessions(store) -> None:
    s, url = store
    uid = new_user(url)
    start, end = datetime(2016, 1, 1, tzinfo=UTC), datetime(2017, 1, 1, tzinfo=UTC)
    a = s.create_session(
        run_id="run-1",
        user_id=uid,
        sync_type="backfill",
        time_range_start=start,
        time_range_end=end,
    )
    b = s.create_session(
        run_id="run-1",
        user_id=uid,
        sync_type="backfill",
        time_range_start=start,
        time_range_end=end,
    )
    assert a.id == b.id and a.status == "initiated" and a.time_range_start == start
    c = s.update_session(
        "run-1",
        uid,
        status="fetching_activities",
        activities_fetched=200,
        last_successful_page=1,
        checkpoint_data={"cursor": 123},
        progress={"phase": "fetching", "processed": 200},
    )
    assert (c.status, c.activities_fetched, c.checkpoint_data["cursor"]) == (
        "fetching_activities",
        200,
        123,
    )
    assert [x.dagster_run_id for x in s.open_sessions()] == ["run-1"]
    assert [x.user_id for x in s.run_sessions("run-1")] == [uid]
    s.update_session("run-1", uid, status="completed", completed_at=datetime.now(UTC))
    assert s.open_sessions() == []


# -- the Arrow path: the table the runs_table asset holds, handed to the store ---------------
def make_table(user_id: str, n: int, seed: int = 1) -> pa.Table:
    """`n` activities as `raw_strava_activities` holds them (ACTIVITY_SCHEMA)."""
    acts = generate_activities(seed, 99, n, end=datetime(2026, 1, 1, tzinfo=UTC))
    now = datetime(2026, 1, 2, tzinfo=UTC)
    return activities_table(
        [activity_row(user_id, a, p, now) for a, p in validate_page(acts).activities]
    )


def enriched(table: pa.Table, **columns: list[Any]) -> pa.Table:
    """`table` as `weather_enriched_activities` holds it (ENRICHED_SCHEMA): a place, weather
    and the step's status on every row, or the given `columns` (name -> one value per row)."""
    rows = table.to_pylist()
    for i, row in enumerate(rows):
        row |= {
            "city": "Oslo",
            "country": "NO",
            "temperature_celsius": 12.3,
            "humidity_percent": 80.5,
            "weather_condition": "Overcast",
            "enrichment_status": json.dumps({"weather": True, "i": i}, separators=(",", ":")),
        }
        row |= {name: values[i] for name, values in columns.items()}
    return pa.Table.from_pylist(rows, schema=ENRICHED_SCHEMA)


def replaced(table: pa.Table, name: str, index: int, value: Any) -> pa.Table:
    """`table` with one value of one column replaced."""
    values = table.column(name).to_pylist()
    values[index] = value
    column = pa.array(values, table.schema.field(name).type)
    return table.set_column(table.schema.get_field_index(name), name, column)


def new_session(s: Store, uid: str) -> str:
    return s.create_session(
        run_id=f"run-{uuid.uuid4()}",
        user_id=uid,
        sync_type="manual",
        time_range_start=None,
        time_range_end=None,
    ).id


def _select(s: Store, url: str | None, query: str) -> list[tuple]:
    if url:
        with psycopg.connect(url) as c:
            return c.execute(query).fetchall()
    with contextlib.closing(sqlite3.connect(s.path)) as c:
        return c.execute(query).fetchall()


def _stored(s: Store, url: str | None, uid: str, columns: str) -> dict[int, tuple]:
    """strava_id -> the given columns of the user's runs."""
    query = f"select strava_id, {columns} from runs where user_id = '{uid}'"
    return {
        r[0]: tuple(str(v) if isinstance(v, uuid.UUID) else v for v in r[1:])
        for r in _select(s, url, query)
    }


def _quarantined(s: Store, url: str | None, uid: str) -> list[tuple]:
    query = (
        "select strava_id, reason, source, payload from activity_quarantine"
        f" where user_id = '{uid}' order by strava_id"
    )
    return _select(s, url, query)


@pytest.fixture
def small_chunks(monkeypatch) -> None:
    """PostgreSQL writes a batch's CSV in chunks of 40 rows (1,000 in production), in its
    thread: the tests' batches span several chunks."""
    monkeypatch.setattr(postgres, "CSV_CHUNK", 40)


def test_the_table_path_counts_inserts_updates_and_skips_and_names_the_session(
    store, small_chunks
) -> None:
    s, url = store
    uid = new_user(url)
    s.batch_size = 64  # several batches, the last one short
    table = make_table(uid, 300)
    ids = table.column("strava_id").to_pylist()
    one, two, three = (new_session(s, uid) for _ in range(3))
    first = s.upsert_runs_table(table, session_id=one)
    assert (first.saved, first.updated, first.skipped, first.failed) == (300, 0, 0, 0)
    again = s.upsert_runs_table(table, session_id=two)
    assert (again.saved, again.updated, again.skipped, again.failed) == (0, 0, 300, 0)
    names = table.column("name").to_pylist()
    edited = table
    for i in (0, 70, 299):
        edited = replaced(edited, "name", i, names[i] + " (edited)")
    third = s.upsert_runs_table(edited, session_id=three)
    assert (third.saved, third.updated, third.skipped, third.failed) == (0, 3, 297, 0)
    stored = _stored(s, url, uid, "name, sync_session_id")
    assert sorted(stored) == sorted(ids)
    for i, strava_id in enumerate(ids):
        # Unchanged rows keep the session that last wrote them.
        want = (names[i] + " (edited)", three) if i in (0, 70, 299) else (names[i], one)
        assert stored[strava_id] == want
    # A tombstoned activity stays deleted; the others are left alone.
    assert s.delete_run(uid, ids[5]) == 1
    fourth = s.upsert_runs_table(edited, session_id=three)
    assert (fourth.saved, fourth.updated, fourth.skipped, fourth.failed) == (0, 0, 300, 0)
    assert ids[5] not in s.run_ids(uid) and len(s.run_ids(uid)) == 299


def test_the_table_path_writes_what_runs_rows_says_and_text_survives_the_copy(store) -> None:
    """Every column of every row as `runs_rows` maps it, text that CSV must quote and escape
    included (quotes, commas, line breaks, a line holding only `\\.`, backslashes, tabs), and
    the empty string kept apart from null."""
    s, url = store
    uid = new_user(url)
    hostile = [
        'a "quoted" name, with a comma',
        "two\nlines\r\nand a \\. line:\n\\.\nend",
        "back\\slash\tand tab",
        "",
        "日本語 🏃 ünïcödé",
    ]
    table = make_table(uid, 12)
    names = table.column("name").to_pylist()
    cities = [None, "", *hostile, *[f"c{i}" for i in range(5)]]
    table = enriched(table, name=[*hostile, *names[5:]], city=cities)
    result = s.upsert_runs_table(table)
    assert (result.saved, result.failed) == (12, 0), result.errors
    expected = runs_rows(table)
    stored = _stored(s, url, uid, ", ".join(RUNS_COLUMNS))
    for row in expected:
        back = dict(zip(RUNS_COLUMNS, stored[row["strava_id"]], strict=True))
        for column, value in row.items():
            got = back[column]
            if column in ("strava_data", "enrichment_status"):
                got = json.loads(got) if isinstance(got, str) else got
                value = json.loads(value)
            elif isinstance(value, datetime):
                got = datetime.fromisoformat(got.replace("Z", "+00:00")) if url is None else got
            elif isinstance(value, bool) and url is None:
                got = bool(got)
            assert got == value, (column, got, value)
    assert [stored[i][RUNS_COLUMNS.index("city")] for i in sorted(stored)] == cities


def test_a_row_refused_in_a_table_batch_is_quarantined_and_the_rest_stored(
    store, small_chunks
) -> None:
    s, url = store
    uid = new_user(url)
    s.batch_size = 16
    table = replaced(make_table(uid, 50), "distance_meters", 20, -5.0)  # the CHECK refuses
    bad = table.column("strava_id")[20].as_py()
    result = s.upsert_runs_table(table, session_id=new_session(s, uid))
    assert (result.saved, result.updated, result.skipped, result.failed) == (49, 0, 0, 1)
    assert len(result.errors) == 1 and "distance_meters" in result.errors[0]
    assert bad not in s.run_ids(uid) and len(s.run_ids(uid)) == 49
    ((strava_id, reason, source, payload),) = _quarantined(s, url, uid)
    assert (strava_id, source) == (bad, "store")
    assert reason == result.errors[0] and reason.startswith("database refused the row: ")
    assert payload == table.column("payload")[20].as_py()
    # The batch stored its other rows; a re-run skips them and refuses the row again.
    again = s.upsert_runs_table(table)
    assert (again.saved, again.updated, again.skipped, again.failed) == (0, 0, 49, 1)


def test_nul_in_text_is_quarantined_on_postgres_and_kept_on_sqlite(store) -> None:
    s, url = store
    uid = new_user(url)
    table = make_table(uid, 20)
    table = replaced(table, "name", 3, "nul \x00 inside")
    table = replaced(table, "timezone", 7, "\x00")
    table = replaced(table, "name", 7, "also \x00")  # the first column of the row is named
    result = s.upsert_runs_table(table)
    ids = table.column("strava_id").to_pylist()
    if url is None:  # SQLite's text holds NUL: stored as it is
        assert (result.saved, result.failed) == (20, 0)
        assert _stored(s, url, uid, "name")[ids[3]] == ("nul \x00 inside",)
        assert _quarantined(s, url, uid) == []
        return
    assert (result.saved, result.failed) == (18, 2)
    assert sorted(s.run_ids(uid)) == sorted(i for n, i in enumerate(ids) if n not in (3, 7))
    quarantined = _quarantined(s, url, uid)
    assert [(q[0], q[1], q[2]) for q in quarantined] == [
        (ids[3], "column name contains a NUL character", "store"),
        (ids[7], "column name contains a NUL character", "store"),
    ]
    assert json.loads(quarantined[0][3])["id"] == ids[3]  # the payload, NUL-free


def test_json_the_database_cannot_hold_is_refused_by_postgres_and_kept_by_sqlite(store) -> None:
    """Escapes jsonb refuses (\\u0000, a lone surrogate): PostgreSQL's reason, quarantined."""
    s, url = store
    uid = new_user(url)
    table = make_table(uid, 10)
    ids = table.column("strava_id").to_pylist()
    table = replaced(table, "payload", 2, json.dumps({"id": ids[2], "x": "\x00"}))
    table = replaced(table, "payload", 6, json.dumps({"id": ids[6], "x": "\ud800"}))
    result = s.upsert_runs_table(table)
    if url is None:
        assert (result.saved, result.failed) == (10, 0)
        return
    assert (result.saved, result.failed) == (8, 2)
    quarantined = _quarantined(s, url, uid)
    assert [q[0] for q in quarantined] == [ids[2], ids[6]]
    assert all(q[1].startswith("database refused the row: ") for q in quarantined)
    assert all(q[2] == "store" for q in quarantined)


def test_text_that_is_not_unicode_raises_before_anything_is_written(store) -> None:
    """A lone surrogate (a dict row) cannot become Arrow text; text that is not UTF-8 (a table
    from elsewhere) fails validation: both raise, and no row of the batch is stored."""
    s, url = store
    uid = new_user(url)
    rows = make_rows(uid, 10)
    rows[4] = {**rows[4], "name": "lone \ud800 surrogate"}
    with pytest.raises(UnicodeEncodeError):
        s.upsert_runs(rows)
    table = make_table(uid, 10)
    names = table.column("name").combine_chunks()
    offsets, data = names.buffers()[1], names.buffers()[2].to_pybytes()
    broken = pa.Array.from_buffers(
        pa.string(), len(names), [None, offsets, pa.py_buffer(b"\xed\xa0" + data[2:])]
    )
    table = table.set_column(table.schema.get_field_index("name"), "name", broken)
    with pytest.raises(pa.ArrowInvalid, match="UTF8"):
        s.upsert_runs_table(table)
    assert s.run_ids(uid) == []


def test_runs_table_builds_each_status_once_per_distinct_data_quality() -> None:
    table = make_table("u", 6)
    notes = [None, '["name missing"]', None, '["name missing"]', "[]", "not json"]
    table = replaced(table, "data_quality", 0, None)
    for i, value in enumerate(notes):
        table = replaced(table, "data_quality", i, value)
    runs = runs_table(table, session_id="s-1")
    assert runs.schema == RUNS_SCHEMA
    assert runs.column("sync_session_id").to_pylist() == ["s-1"] * 6
    base = {"weather": False, "geocoding": False, "reason": "not enriched"}
    assert runs.column("enrichment_status").to_pylist() == [
        json.dumps(base),
        json.dumps({**base, "data_quality": ["name missing"]}),
        json.dumps(base),
        json.dumps({**base, "data_quality": ["name missing"]}),
        json.dumps(base),
        json.dumps({**base, "data_quality": ["not json"]}),
    ]
    # An enriched table's own status is kept; a row without one gets the default.
    mixed = enriched(make_table("u", 3), enrichment_status=['{"weather":true}', None, "{}"])
    assert runs_table(mixed).column("enrichment_status").to_pylist() == [
        '{"weather":true}',
        json.dumps(base),
        "{}",
    ]


# -- PostgreSQL only ----------------------------------------------------------------------
@pytest.fixture
def pg_store(pg_url) -> Iterator[PostgresStore]:
    s = PostgresStore(pg_url, TokenCipher([KEY]))
    s.migrate()
    yield s
    s.close()


def as_user(conn: psycopg.Connection, role: str, uid: str | None) -> None:
    conn.execute(f"set role {role}")
    claims = json.dumps({"sub": uid, "role": role}) if uid else ""
    conn.execute("select set_config('request.jwt.claims', %s, false)", (claims,))


def test_rls_users_see_only_their_rows_and_write_nothing(pg_store, pg_url) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    add_users(pg_url, a, b)
    pg_store.upsert_runs(make_rows(a, 20, seed=1) + make_rows(b, 30, seed=2))
    for uid in (a, b):
        pg_store.save_connection(uid, tokens(uid[:8]))
        pg_store.create_session(
            run_id=f"run-{uid}",
            user_id=uid,
            sync_type="backfill",
            time_range_start=None,
            time_range_end=None,
        )
    with psycopg.connect(pg_url, autocommit=True) as conn:
        as_user(conn, "authenticated", a)
        for table, n in (("runs", 20), ("sync_sessions", 1)):
            owners = conn.execute(f"select distinct user_id::text from public.{table}").fetchall()
            assert owners == [(a,)], table
            assert conn.execute(f"select count(*) from public.{table}").fetchone()[0] == n
        assert conn.execute(
            "select user_id::text, status from public.strava_connections"
        ).fetchall() == [(a, "active")]
        for stmt in (
            "select access_token_encrypted from public.strava_connections",
            f"update public.runs set name = 'x' where user_id = '{b}'",
            f"update public.runs set name = 'x' where user_id = '{a}'",
            f"delete from public.runs where user_id = '{b}'",
            f"insert into public.sync_sessions (user_id) values ('{a}')",
            "select * from public.weather_cache",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(stmt)
        as_user(conn, "anon", None)
        for table in ("runs", "sync_sessions", "strava_connections", "activity_quarantine"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"select count(*) from public.{table}")
        conn.execute("reset role")
        assert conn.execute("select count(*) from public.runs").fetchone()[0] == 50


def test_realtime_publication_trigger_and_migration_bookkeeping(pg_store, pg_url) -> None:
    assert pg_store.migrate() == []  # already applied: nothing twice
    with psycopg.connect(pg_url, autocommit=True) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "select tablename from pg_publication_tables where pubname = 'supabase_realtime'"
            )
        }
        assert "sync_sessions" in tables
        versions = [
            r[0]
            for r in conn.execute(
                "select version from supabase_migrations.schema_migrations order by version"
            )
        ]
        files = sorted((Path(__file__).parents[1] / "supabase" / "migrations").glob("*.sql"))
        assert versions == [f.name.split("_", 1)[0] for f in files] and len(files) >= 4
    uid = str(uuid.uuid4())
    add_users(pg_url, uid)
    s1 = pg_store.create_session(
        run_id="r", user_id=uid, sync_type="manual", time_range_start=None, time_range_end=None
    )
    with psycopg.connect(pg_url, autocommit=True) as conn:
        before = conn.execute(
            "select updated_at from sync_sessions where id = %s", (s1.id,)
        ).fetchone()[0]
        time.sleep(0.05)
        pg_store.update_session("r", uid, status="fetching_activities")
        after = conn.execute(
            "select updated_at from sync_sessions where id = %s", (s1.id,)
        ).fetchone()[0]
    assert after > before


@pytest.mark.parametrize("via", ["rows", "table"])
def test_connection_dropped_mid_batch_rolls_back_then_stores_once(
    pg_store, pg_url, via, small_chunks
) -> None:
    uid = str(uuid.uuid4())
    add_users(pg_url, uid)
    pg_store.batch_size = 150  # three batches: the second one's connection drops
    merges, kills = [], []

    def kill_own_backend(conn: psycopg.Connection) -> None:
        merges.append(1)
        if len(merges) != 2:
            return
        pid = conn.execute("select pg_backend_pid()").fetchone()[0]
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute("select pg_terminate_backend(%s)", (pid,))
        kills.append(pid)

    pg_store.before_merge = kill_own_backend
    if via == "rows":
        result = pg_store.upsert_runs(make_rows(uid, 400))
    else:
        result = pg_store.upsert_runs_table(make_table(uid, 400))
    assert kills, "the fault was not injected"
    assert (result.saved, result.updated, result.failed) == (400, 0, 0)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("select count(*), count(distinct strava_id) from runs").fetchone() == (
            400,
            400,
        )
