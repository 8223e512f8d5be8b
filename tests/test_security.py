"""Security, end to end: Row Level Security on every table, no secret in any log, event or error,
tokens encrypted at rest, and deauthorization deleting every row and file of the athlete's data.

Tables are enumerated from the catalog (PostgreSQL's `pg_class`, SQLite's `sqlite_master`), so
a table added later without RLS, or with a user column deauthorization forgets, fails here.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sqlite3
import stat
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet, InvalidToken
from dagster import (
    DagsterEventType,
    DagsterInstance,
    EnvVar,
    SensorResult,
    build_sensor_context,
    instance_for_test,
    materialize,
    serialize_value,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from sync_assets_sandbox import AthleteHandle, StravaSandbox

from sync_assets.apps.webhooks import WebhookReceiver, WebhookServer
from sync_assets.assets import raw_strava_activities, runs_table, weather_enriched_activities
from sync_assets.core.clients.strava_listing import ListCursor
from sync_assets.core.clients.tokens import StravaTokens
from sync_assets.core.errors import SyncError
from sync_assets.core.storage import StepMetrics, Store, close_stores, open_store
from sync_assets.core.storage.crypto import KEYS_ENV, TokenCipher, keys_from_env
from sync_assets.core.storage.postgres import PostgresStore
from sync_assets.core.storage.sqlite import SqliteStore
from sync_assets.partitions import USERS_PARTITIONS_NAME, month_key
from sync_assets.sensors.webhooks import strava_webhook_events

from .helpers import add_users, make_resources

ASSETS = [raw_strava_activities, weather_enriched_activities, runs_table]
CLIENT_SECRET = "cs-" + secrets.token_hex(16)  # the app's real secret in these tests
WRONG_SECRET = "cs-wrong-" + secrets.token_hex(16)  # a misconfigured deployment's
VERIFY_TOKEN = "verify-" + secrets.token_hex(8)

# Schemas that are PostgreSQL's or Supabase's own, not the app's.
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "auth")
# What a signed-in user may read, by design (20261129000200_row_level_security.sql): their own
# rows, all columns (None) or these columns only; and nothing may ever be written.
EXPOSED: dict[str, frozenset[str] | None] = {
    "public.runs": None,
    "public.sync_sessions": None,
    "public.activity_quarantine": None,
    "public.strava_connections": frozenset(
        {
            "user_id",
            "athlete_id",
            "scopes",
            "status",
            "status_reason",
            "last_sync_cursor",
            "created_at",
            "updated_at",
        }
    ),
}
# Pipeline-only: no privilege at all for anon/authenticated (and RLS on, with no policy, in
# `public`, so that a careless grant later still shows nothing).
NOT_EXPOSED = frozenset(
    {
        "public.weather_cache",
        "public.sync_staging",
        "public.sync_user_leases",
        "public.strava_rate_budget",
        "public.strava_webhook_events",
        "public.strava_deleted_activities",
        "public.strava_listing_watermarks",
        "public.strava_oauth_states",
        "public.sync_step_metrics",
        "supabase_migrations.schema_migrations",
    }
)
# Views over pipeline data (20261129001100_sync_metrics.sql): app-wide operator metrics. A view
# reads with its owner's rights, past RLS, unless it is `security_invoker`: these must be, and
# are pipeline-only as well (nothing for anon/authenticated).
INVOKER_VIEWS = frozenset(
    {
        "public.sync_success_rate",
        "public.sync_duration_by_volume",
        "public.sync_api_health",
        "public.sync_write_performance",
    }
)
NOT_EXPOSED |= INVOKER_VIEWS
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
USER_COLUMN = re.compile(r"^(user|athlete|owner)_id$")
# Supabase grants every new object in `public` to anon and authenticated by default (its
# `alter default privileges`); the bootstrap of the other tests leaves that out. Here it is
# in, so a migration that forgets to revoke is caught.
SUPABASE_DEFAULT_PRIVILEGES = """
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated,
  service_role;
alter default privileges in schema public grant all on functions to anon, authenticated,
  service_role;
"""


# -- fixtures and a world of synced athletes ------------------------------------------------
@pytest.fixture
def sandbox() -> Iterator[StravaSandbox]:
    """Overrides conftest's: a client secret of our own, to look for everywhere."""
    yield StravaSandbox(seed=4242, client_secret=CLIENT_SECRET)


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    """A persistent instance under tmp_path: its files (event log, compute logs) are scanned."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with instance_for_test(temp_dir=str(home)) as inst:
        yield inst


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    close_stores()


@pytest.fixture
def supabase_pg_url(pg_url: str) -> str:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SUPABASE_DEFAULT_PRIVILEGES)
    return pg_url


@dataclass
class World:
    url: str | None
    data_dir: Path
    parquet: Path
    store: Store
    instance: DagsterInstance
    sandbox: StravaSandbox
    resources: dict[str, Any]
    users: dict[str, AthleteHandle] = field(default_factory=dict)
    results: list[Any] = field(default_factory=list)

    def connect(self, n: int = 40, *, expired: bool = False) -> str:
        """A sandbox athlete connected as `sync-assets connect` does; `expired`: its access
        token must be refreshed (and the refresh token rotates) before the first request."""
        athlete = self.sandbox.add_athlete(n_activities=n, years=0.5)
        user = str(uuid.uuid4())
        if self.url:
            add_users(self.url, user)
        expires_at = int(self.sandbox.now()) - 60 if expired else athlete.expires_at
        self.store.save_connection(
            user,
            StravaTokens(
                access_token=athlete.access_token,
                refresh_token=athlete.refresh_token,
                expires_at=expires_at,
            ),
            athlete_id=athlete.athlete_id,
            scopes=athlete.scopes,
        )
        self.instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
        self.users[user] = athlete
        return user

    def sync(
        self,
        user: str | None,
        resources: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
    ):
        """A whole-history sync of one user, or the run a sensor asked for (`tags`)."""
        if tags is None:
            assert user is not None
            acts = self.sandbox.activities(self.users[user].athlete_id)
            first = month_key(datetime.fromisoformat(acts[0]["start_date"]))
            last = month_key(datetime.fromtimestamp(self.sandbox.now(), UTC))
            tags = {
                ASSET_PARTITION_RANGE_START_TAG: f"{first}|{user}",
                ASSET_PARTITION_RANGE_END_TAG: f"{last}|{user}",
            }
        result = materialize(
            ASSETS,
            instance=self.instance,
            resources=resources or self.resources,
            tags=tags,
            raise_on_error=False,
        )
        self.results.append(result)
        return result

    def extras(self, user: str) -> None:
        """What a full sync leaves no row of: an unfinished listing's staged page, a run's hold on
        the user, push events (through the receiver), a tombstone of an activity deleted on
        Strava, a spent OAuth state."""
        athlete = self.users[user]
        acts = self.sandbox.activities(athlete.athlete_id)
        cursor = ListCursor(after=1_767_225_600, before=1_769_904_000, order="ascending")
        self.store.stage_page(user, "2026-01/2026-02", 1, cursor, json.dumps(acts[:3]))
        # A run that held the user and died (its hold expired at once: later runs pass it by).
        assert self.store.lease_take(user, f"run-of-{user[:8]}", 0.001)
        receiver = WebhookReceiver(self.store, VERIFY_TOKEN)
        event = {
            "object_type": "activity",
            "object_id": acts[1]["id"],
            "aspect_type": "update",
            "owner_id": athlete.athlete_id,
            "event_time": int(self.sandbox.now()) - 100,
            "updates": {"title": f"Secret title of {user[:8]}"},
        }
        assert receiver.event(json.dumps(event).encode()) == (200, {"stored": True})
        assert self.store.delete_run(user, acts[2]["id"]) == 1
        now = int(self.sandbox.now())  # an OAuth state's nonce, spent (apps/oauth.py)
        assert self.store.use_oauth_state(f"nonce-{user}", now + 600, now)


def make_world(
    sandbox, server, instance, tmp_path: Path, url: str | None, data_dir: Path, monkeypatch
) -> World:
    monkeypatch.setenv("STRAVA_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("STRAVA_CLIENT_SECRET_WRONG", WRONG_SECRET)
    monkeypatch.setenv("SYNC_ASSETS_STORAGE_URL", str(tmp_path / "parquet"))
    resources = make_resources(
        sandbox,
        server,
        tmp_path,
        url,
        data_dir,
        client_secret=EnvVar("STRAVA_CLIENT_SECRET"),  # as definitions.py does
        step_retries=0,
    )
    return World(
        url, data_dir, tmp_path / "parquet", open_store(url, data_dir), instance, sandbox, resources
    )


def synced_world(sandbox, server, instance, tmp_path, url, data_dir, monkeypatch) -> World:
    """Two athletes A and B with a whole history synced (runs, sessions, quarantine, weather,
    the shared rate budget, Parquet files) plus staging, push events and a tombstone each."""
    world = make_world(sandbox, server, instance, tmp_path, url, data_dir, monkeypatch)
    sandbox.set_faults(malformed_activities=2)  # -> activity_quarantine rows for each
    for _ in range(2):
        user = world.connect(40)
        assert world.sync(user).success
        world.extras(user)
    sandbox.clear_faults()
    # App-wide step metrics (no user data), so that the metrics table and views have rows.
    world.store.record_step_metrics(
        StepMetrics("sync-x", "sync-x", "runs_table", api="strava", api_requests=3, rows_written=80)
    )
    return world


# -- catalog helpers -------------------------------------------------------------------------
def pg_tables(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every table, view and foreign table of the app's schemas, with its RLS state."""
    rows = conn.execute(
        """
        select c.oid::int, n.nspname || '.' || c.relname, c.relkind::text, c.relrowsecurity,
               c.relforcerowsecurity
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r', 'p', 'v', 'm', 'f')
          and n.nspname <> all(%s) and n.nspname not like 'pg\\_%%'
        order by 2
        """,
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    return [{"oid": r[0], "name": r[1], "kind": r[2], "rls": r[3], "force": r[4]} for r in rows]


def pg_columns(conn: psycopg.Connection, oid: int) -> list[tuple[str, bool]]:
    """(column, insertable): identity-always and generated columns take no value."""
    return [
        (r[0], r[1])
        for r in conn.execute(
            "select attname, attidentity <> 'a' and attgenerated = '' from pg_attribute "
            "where attrelid = %s and attnum > 0 and not attisdropped order by attnum",
            (oid,),
        )
    ]


def user_filter(columns: list[str], user: str, athlete_id: int, style: str) -> str:
    """SQL matching one user's rows by every user-identifying column of a table."""
    parts = []
    for c in columns:
        if c == "user_id":
            parts.append(f"user_id::text = '{user}'" if style == "pg" else f"user_id = '{user}'")
        else:
            parts.append(f"{c} = {int(athlete_id)}")
    return " or ".join(parts)


def pg_user_tables(conn: psycopg.Connection) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in pg_tables(conn):
        cols = [c for c, _ in pg_columns(conn, t["oid"]) if USER_COLUMN.match(c)]
        if cols:
            out[t["name"]] = cols
    return out


def sqlite_user_tables(conn: sqlite3.Connection) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for (name,) in conn.execute(
        "select name from sqlite_master where type = 'table' and name not like 'sqlite_%'"
    ).fetchall():
        cols = [
            r[1] for r in conn.execute(f'pragma table_info("{name}")') if USER_COLUMN.match(r[1])
        ]
        if cols:
            out[name] = cols
    return out


def dump_database(url: str | None, data_dir: Path) -> dict[str, list[str]]:
    """Every row of every table, as text (PostgreSQL: the app's schemas)."""
    if url:
        with psycopg.connect(url, autocommit=True) as conn:
            return {
                t["name"]: sorted(r[0] for r in conn.execute(f"select t::text from {t['name']} t"))
                for t in pg_tables(conn)
            }
    with sqlite3.connect(data_dir / "sync_assets.db") as conn:
        names = [
            r[0]
            for r in conn.execute(
                "select name from sqlite_master where type = 'table' and name not like 'sqlite_%'"
            )
        ]
        return {n: sorted(repr(r) for r in conn.execute(f'select * from "{n}"')) for n in names}


def user_rows(url: str | None, data_dir: Path, user: str, athlete_id: int) -> dict[str, list]:
    """Every row identifying this user, in every table with a user-identifying column."""
    if url:
        with psycopg.connect(url, autocommit=True) as conn:
            return {
                t: sorted(
                    r[0]
                    for r in conn.execute(
                        f"select x::text from {t} x where {user_filter(c, user, athlete_id, 'pg')}"
                    )
                )
                for t, c in pg_user_tables(conn).items()
            }
    with sqlite3.connect(data_dir / "sync_assets.db") as conn:
        return {
            t: sorted(
                repr(r)
                for r in conn.execute(
                    f'select * from "{t}" where {user_filter(c, user, athlete_id, "sqlite")}'
                )
            )
            for t, c in sqlite_user_tables(conn).items()
        }


def raw_bytes(*roots: Path) -> dict[str, bytes]:
    """The bytes of every file under these folders (databases, WAL, logs, Parquet, keys)."""
    files = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                files[str(p)] = p.read_bytes()
    return files


def pg_dump(url: str) -> str:
    return subprocess.run(
        ["pg_dump", "--no-owner", "--no-privileges", url],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout


# -- 1. Row Level Security ---------------------------------------------------------------------
def attempt(conn: psycopg.Connection, stmt: str, params: Any = None) -> int | str:
    """rowcount of a statement in its own savepoint, or "denied" (insufficient privilege or an
    RLS policy refusing the row, both SQLSTATE 42501; or a write to a view that cannot be
    written at all, 55000 / 42809)."""
    try:
        with conn.transaction():
            return conn.execute(stmt, params).rowcount
    except (
        psycopg.errors.InsufficientPrivilege,
        psycopg.errors.ObjectNotInPrerequisiteState,
        psycopg.errors.WrongObjectType,
    ):
        return "denied"


def act_as(conn: psycopg.Connection, role: str, claims: dict[str, Any] | None) -> None:
    """As PostgREST does per request: a local role and the request's JWT claims."""
    conn.execute(f"set local role {role}")
    conn.execute(
        "select set_config('request.jwt.claims', %s, true)", (json.dumps(claims) if claims else "",)
    )


def test_rls_every_table_from_the_catalog_protects_each_users_rows(
    sandbox, server, instance, tmp_path, supabase_pg_url, monkeypatch
) -> None:
    url = supabase_pg_url
    monkeypatch.setenv(KEYS_ENV, Fernet.generate_key().decode())
    world = synced_world(sandbox, server, instance, tmp_path, url, tmp_path / "data", monkeypatch)
    (a, athlete_a), (b, athlete_b) = world.users.items()
    before = dump_database(url, world.data_dir)
    checked: list[str] = []
    statements = 0
    with psycopg.connect(url, autocommit=True) as admin:
        tables = pg_tables(admin)
        names = {t["name"] for t in tables}
        unknown = names - set(EXPOSED) - NOT_EXPOSED
        assert not unknown, f"classify these tables in EXPOSED or NOT_EXPOSED: {sorted(unknown)}"
        user_tables = pg_user_tables(admin)
        # The world is whole: every table has rows, every user table rows of both users.
        for t in tables:
            assert before[t["name"]], f"{t['name']} is empty: the test would prove nothing"
        for name in user_tables:
            for user, athlete in ((a, athlete_a), (b, athlete_b)):
                assert user_rows(url, world.data_dir, user, athlete.athlete_id)[name], (name, user)
        # Sequences: no nextval()/setval() for anon or authenticated either.
        for (seq,) in admin.execute(
            "select c.oid::regclass::text from pg_class c join pg_namespace n "
            "on n.oid = c.relnamespace where c.relkind = 'S' and n.nspname <> all(%s)",
            (list(SYSTEM_SCHEMAS),),
        ).fetchall():
            for role in ("anon", "authenticated"):
                granted = admin.execute(
                    "select has_sequence_privilege(%s, %s, 'USAGE,SELECT,UPDATE')", (role, seq)
                ).fetchone()[0]
                assert not granted, f"{role} may use sequence {seq}"

        for t in tables:
            name, oid = t["name"], t["oid"]
            columns = pg_columns(admin, oid)
            cols = [c for c, _ in columns]
            writable = [c for c, ok in columns if ok]
            # The catalog: what each role holds on the table and its columns.
            for role in ("anon", "authenticated"):
                held = [
                    p
                    for p in PRIVILEGES
                    if admin.execute(
                        "select has_table_privilege(%s, %s, %s)", (role, oid, p)
                    ).fetchone()[0]
                ]
                readable = {
                    c
                    for c in cols
                    if admin.execute(
                        "select has_column_privilege(%s, %s, %s, 'SELECT')", (role, oid, c)
                    ).fetchone()[0]
                }
                col_writes = {
                    c
                    for c in cols
                    if admin.execute(
                        "select has_column_privilege(%s, %s, %s, 'INSERT,UPDATE,REFERENCES')",
                        (role, oid, c),
                    ).fetchone()[0]
                }
                assert not col_writes, f"{role} may write {name}({sorted(col_writes)})"
                if role == "authenticated" and name in EXPOSED:
                    assert set(held) <= {"SELECT"}, (name, held)
                    assert readable == (EXPOSED[name] or set(cols)), (name, readable)
                    assert not {c for c in readable if "token" in c or "encrypted" in c}
                else:
                    assert not held and not readable, f"{role} holds {held} {readable} on {name}"
            if name.startswith("public.") and t["kind"] == "v":
                options = admin.execute(
                    "select coalesce(reloptions, '{}') from pg_class where oid = %s", (oid,)
                ).fetchone()[0]
                assert name in INVOKER_VIEWS and "security_invoker=true" in options, (
                    f"{name}: views bypass RLS unless security_invoker"
                )
            elif name.startswith("public."):
                assert t["kind"] == "r", f"{name}: views bypass RLS; expose tables only"
                assert t["rls"] and t["force"], f"{name}: RLS must be enabled and forced"
            policies = admin.execute(
                "select policyname, cmd, roles::text[], qual from pg_policies "
                "where schemaname || '.' || tablename = %s",
                (name,),
            ).fetchall()
            if name in EXPOSED:
                assert policies, name
                for pname, cmd, roles, qual in policies:
                    assert cmd == "SELECT" and roles == ["authenticated"], (name, pname)
                    assert "auth.uid()" in qual, (name, pname, qual)
            else:
                assert not policies, f"{name} is pipeline-only: no policy expected"

            # The behaviour, as PostgREST would run A's requests.
            owner_col = "user_id" if "user_id" in cols else None
            b_filter = user_filter(user_tables.get(name, []), b, athlete_b.athlete_id, "pg")
            a_filter = user_filter(user_tables.get(name, []), a, athlete_a.athlete_id, "pg")
            b_row = admin.execute(
                f"select to_jsonb(t)::text from {name} t"
                + (f" where {b_filter}" if b_filter else "")
                + " limit 1"
            ).fetchone()[0]
            col_list = ", ".join(writable)
            insert_b = (
                f"insert into {name} ({col_list}) select {col_list} "
                f"from jsonb_populate_record(null::{name}, %s::jsonb)"
            )
            touch = cols[-1]
            with admin.transaction():
                act_as(admin, "authenticated", {"sub": a, "role": "authenticated"})
                if name in EXPOSED:
                    visible = ", ".join(sorted(EXPOSED[name])) if EXPOSED[name] else "*"
                    seen = admin.execute(f"select {visible} from {name}").fetchall()
                    owners = {
                        str(r[0])
                        for r in admin.execute(f"select {owner_col} from {name}").fetchall()
                    }
                    assert owners == {a}, f"{name}: A sees rows of {owners - {a}}"
                    mine = [r for r in before[name] if a in r]
                    assert len(seen) == len(mine) > 0, f"{name}: A must see all of A's rows"
                    hidden = sorted(set(cols) - set(EXPOSED[name] or cols))
                    for c in hidden:
                        assert attempt(admin, f"select {c} from {name}") == "denied", (name, c)
                    statements += 2 + len(hidden)
                else:
                    assert attempt(admin, f"select 1 from {name} limit 1") == "denied", name
                    statements += 1
                assert attempt(admin, insert_b, (b_row,)) == "denied", f"{name}: insert as B"
                writes = [f"truncate {name}"]
                # B's rows and A's own (users write nothing), or the whole table.
                for where in [w for w in (b_filter, a_filter) if w] or [""]:
                    clause = f" where {where}" if where else ""
                    writes += [
                        f"update {name} set {touch} = {touch}{clause}",
                        f"delete from {name}{clause}",
                    ]
                for stmt in writes:
                    assert attempt(admin, stmt) in ("denied", 0), f"{name}: {stmt}"
                statements += 1 + len(writes)
            # A JWT of a user without data, and no JWT at all: nothing.
            for claims in ({"sub": str(uuid.uuid4()), "role": "authenticated"}, None):
                with admin.transaction():
                    act_as(admin, "authenticated", claims)
                    if name in EXPOSED:
                        assert admin.execute(f"select count(*) from {name}").fetchone()[0] == 0
                    else:
                        assert attempt(admin, f"select 1 from {name}") == "denied"
                    statements += 1
            # anon: nothing at all, read or write.
            with admin.transaction():
                act_as(admin, "anon", None)
                for stmt in (
                    f"select 1 from {name} limit 1",
                    f"update {name} set {touch} = {touch}",
                    f"delete from {name}",
                    f"truncate {name}",
                ):
                    assert attempt(admin, stmt) == "denied", f"anon: {stmt}"
                assert attempt(admin, insert_b, (b_row,)) == "denied", f"anon: insert {name}"
                statements += 5
            checked.append(name)
    assert dump_database(url, world.data_dir) == before  # nothing anyone tried changed a row
    assert set(checked) >= set(EXPOSED) | {n for n in NOT_EXPOSED if n in names}
    print(f"\nRLS: {len(checked)} tables checked, {statements} statements as anon/authenticated")


# -- 2. Secrets in logs, events, metadata, errors and files -------------------------------------
def everything_said(caplog, world: World) -> dict[str, str]:
    """Every text the sync produced, by source."""
    texts: dict[str, str] = {}
    fmt = logging.Formatter()
    for i, r in enumerate(caplog.records):
        parts = [r.getMessage(), repr(r.args), repr(r.__dict__)]
        if r.exc_info:
            parts.append(fmt.formatException(r.exc_info))
        if r.stack_info:
            parts.append(r.stack_info)
        texts[f"log record {i} ({r.name})"] = "\n".join(parts)
    for result in world.results:
        run_id = result.run_id
        texts[f"run {run_id}"] = serialize_value(world.instance.get_run_by_id(run_id))
        for j, entry in enumerate(world.instance.all_logs(run_id)):
            texts[f"event {run_id}/{j}"] = serialize_value(entry) + "\n" + entry.message
        for j, mat in enumerate(result.get_asset_materialization_events()):
            texts[f"materialization {run_id}/{j}"] = repr(mat.materialization.metadata)
        for j, event in enumerate(result.all_events):
            if event.event_type == DagsterEventType.STEP_FAILURE:
                texts[f"step failure {run_id}/{j}"] = event.step_failure_data.error.to_string()
        for s in world.store.run_sessions(run_id):
            texts[f"session {run_id}/{s.user_id}"] = repr(s) + json.dumps(s.last_error)
    return texts


def test_no_secret_in_logs_events_metadata_errors_or_files(
    backend, sandbox, server, instance, tmp_path, monkeypatch, caplog
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    url, data_dir = backend
    world = make_world(sandbox, server, instance, tmp_path, url, data_dir, monkeypatch)
    sandbox.set_faults(malformed_activities=1)
    # A: expired access token -> refresh with the client secret, the refresh token rotates.
    a = world.connect(30, expired=True)
    # B: revoked on Strava -> the refresh is refused, the run fails.
    b = world.connect(30, expired=True)
    sandbox.revoke(world.users[b].athlete_id)
    # C: a deployment with the wrong client secret -> Strava refuses the refresh.
    c = world.connect(30, expired=True)
    old = {
        u: (h.access_token, h.refresh_token)
        for u, h in world.users.items()  # known before the runs
    }
    assert world.sync(a).success
    assert not world.sync(b).success
    wrong = make_resources(
        sandbox,
        server,
        tmp_path,
        url,
        data_dir,
        client_secret=EnvVar("STRAVA_CLIENT_SECRET_WRONG"),
        step_retries=0,
    )
    assert not world.sync(c, resources=wrong).success
    new = world.store.get(a).tokens
    new_access, new_refresh = (
        new.access_token.get_secret_value(),
        new.refresh_token.get_secret_value(),
    )
    assert new_refresh != old[a][1] and new_access != old[a][0], "no refresh with rotation"
    secrets_ = {
        "client secret": CLIENT_SECRET,
        "wrong client secret": WRONG_SECRET,
        "A's new access token": new_access,
        "A's new refresh token": new_refresh,
    }
    for u, (access, refresh) in old.items():
        secrets_[f"access token of {u[:8]}"] = access
        secrets_[f"refresh token of {u[:8]}"] = refresh

    # The failures are real and say why, without the secrets.
    sessions = {
        u: world.store.get_session(r.run_id, u)
        for u, r in zip((a, b, c), world.results, strict=True)
    }
    assert sessions[a].status == "completed"
    assert sessions[b].status == sessions[c].status == "failed"
    assert sessions[b].last_error["type"] == "AUTHENTICATION"
    failures = [
        e
        for r in world.results
        for e in r.all_events
        if e.event_type == DagsterEventType.STEP_FAILURE
    ]
    assert len(failures) >= 2

    texts = everything_said(caplog, world)
    texts["database dump"] = json.dumps(dump_database(url, data_dir))
    if url:
        texts["pg_dump"] = pg_dump(url)
    files = raw_bytes(tmp_path)  # SQLite + WAL, Parquet, Dagster's event log and compute logs
    assert any("dagster_home" in f for f in files) and any(".parquet" in f for f in files)
    # The scan sees what it should: the users and the failures' reasons are there.
    assert any(b in t and "AUTHENTICATION" in t for t in texts.values())
    assert any(c in t for t in texts.values()) and any(a.encode() in d for d in files.values())
    for what, value in secrets_.items():
        assert len(value) >= 20
        for source, text in texts.items():
            assert value not in text, f"{what} in {source}"
        for path, data in files.items():
            assert value.encode() not in data, f"{what} in the file {path}"
    n_records = sum(1 for k in texts if k.startswith("log record"))
    n_events = sum(1 for k in texts if k.startswith("event "))
    print(
        f"\nsecrets: {len(secrets_)} values, {n_records} log records, {n_events} Dagster events, "
        f"{len(texts)} texts, {len(files)} files ({sum(map(len, files.values()))} bytes) scanned"
    )


# -- 3. Tokens at rest ---------------------------------------------------------------------------
def test_tokens_at_rest_are_fernet_ciphertexts_only_the_key_opens(
    backend, sandbox, server, instance, tmp_path, monkeypatch
) -> None:
    url, data_dir = backend
    world = make_world(sandbox, server, instance, tmp_path, url, data_dir, monkeypatch)
    user = world.connect(20, expired=True)
    old = world.users[user]
    assert world.sync(user).success  # refreshed and rotated: new tokens written
    tokens = world.store.get(user).tokens
    access, refresh = (
        tokens.access_token.get_secret_value(),
        tokens.refresh_token.get_secret_value(),
    )
    assert refresh != old.refresh_token
    plain = [access, refresh, old.access_token, old.refresh_token]

    query = (
        "select access_token_encrypted, refresh_token_encrypted from strava_connections "
        "where user_id = ?"
    )
    if url:
        with psycopg.connect(url) as conn:
            raw = conn.execute(query.replace("?", "%s"), (user,)).fetchone()
        key = keys_from_env()[0]
        everything = pg_dump(url) + json.dumps(dump_database(url, data_dir))
        assert all(v.encode() not in everything.encode() for v in plain)
    else:
        db = data_dir / "sync_assets.db"
        with sqlite3.connect(db) as conn:
            raw = conn.execute(query, (user,)).fetchone()
            dump = "\n".join(conn.iterdump())
        keys = keys_from_env()
        key = keys[0] if keys else (data_dir / "encryption.key").read_text().strip()
        # The database and its key file are the owner's only.
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        if not keys:
            assert stat.S_IMODE((data_dir / "encryption.key").stat().st_mode) == 0o600
        files = raw_bytes(data_dir)  # the database, its WAL and shared memory, the key file
        assert any(p.endswith("-wal") for p in files)
        for v in plain:
            assert v not in dump
            assert not [p for p, data in files.items() if v.encode() in data]
    # Ciphertexts: Fernet tokens (version byte 0x80), distinct, that the key opens.
    assert all(c.startswith("gAAAAA") for c in raw) and raw[0] != raw[1]
    fernet = Fernet(key.encode())
    assert fernet.decrypt(raw[0].encode()).decode() == access
    assert fernet.decrypt(raw[1].encode()).decode() == refresh
    # Without the key: nothing, neither with Fernet nor through the app.
    other = Fernet.generate_key().decode()
    for c in raw:
        with pytest.raises(InvalidToken):
            Fernet(other.encode()).decrypt(c.encode())
    close_stores()
    stranger = (
        PostgresStore(url, TokenCipher([other]))
        if url
        else SqliteStore(data_dir / "sync_assets.db", TokenCipher([other]))
    )
    try:
        with pytest.raises(SyncError) as err:
            stranger.get(user)
        assert "cannot be decrypted" in str(err.value)
        assert not any(v in str(err.value) or v in repr(err.value) for v in plain + list(raw))
    finally:
        stranger.close()


# -- 4. Deauthorization -------------------------------------------------------------------------
def test_deauthorization_deletes_every_row_and_file_of_the_athlete(
    backend, sandbox, server, instance, tmp_path, monkeypatch
) -> None:
    url, data_dir = backend
    world = synced_world(sandbox, server, instance, tmp_path, url, data_dir, monkeypatch)
    (a, athlete_a), (b, athlete_b) = world.users.items()
    resources = {"supabase": world.resources["supabase"], "strava": world.resources["strava"]}
    with WebhookServer(WebhookReceiver(world.store, VERIFY_TOKEN)) as hook:
        assert sandbox.push.subscribe(hook.url, VERIFY_TOKEN)[0] == 200
        # Push events through the real path: an activity renamed and one deleted on Strava.
        for user, athlete in world.users.items():
            acts = sandbox.activities(athlete.athlete_id)
            sandbox.update_activity(athlete.athlete_id, acts[5]["id"], name=f"Renamed {user}")
            sandbox.delete_activity(athlete.athlete_id, acts[6]["id"])
        sandbox.push.flush()
        with build_sensor_context(instance=instance, resources=resources) as ctx:
            result = strava_webhook_events(ctx)
        assert isinstance(result, SensorResult) and result.run_requests
        for request in result.run_requests:  # the webhook syncs: more sessions and files
            assert world.sync(None, tags=request.tags).success
        cursor = result.cursor
        # A revokes the app on Strava; Strava pushes `authorized: "false"`.
        sandbox.revoke(athlete_a.athlete_id)
        sandbox.push.flush()
        assert not sandbox.push.failed

    # The webhook syncs freed the users at their end: a run that died holding A holds it now.
    assert world.store.lease_take(a, f"run-of-{a[:8]}", 0.001)
    files_a = sorted(world.parquet.glob(f"*/*/{a}"))
    files_b = sorted(p for p in world.parquet.rglob("*") if b in p.parts)
    assert files_a and files_b
    rows_a = user_rows(url, data_dir, a, athlete_a.athlete_id)
    rows_b = user_rows(url, data_dir, b, athlete_b.athlete_id)
    # Every user table holds rows of A before (the connection and events by athlete id).
    assert all(rows_a.values()), {t: len(r) for t, r in rows_a.items()}
    everything = dump_database(url, data_dir)
    # Shared: the tables without user data (views over sessions change with them).
    shared = {
        t: rows for t, rows in everything.items() if t not in rows_a and t not in INVOKER_VIEWS
    }

    with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as ctx:
        result = strava_webhook_events(ctx)
    assert result.dynamic_partitions_requests[0].partition_keys == [a]
    after_tick = dump_database(url, data_dir)
    # The same tick again (it crashed before Dagster saved its cursor): it finds the kept
    # deauthorization event and deletes again; only A's connection row is rewritten (blank
    # tokens encrypted anew), nothing else changes.
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as ctx:
        again = strava_webhook_events(ctx)
    assert again.cursor == result.cursor
    again_dump = dump_database(url, data_dir)
    for t, rows in after_tick.items():
        if not t.endswith("strava_connections"):
            assert again_dump[t] == rows, t

    left = {
        t: rows for t, rows in user_rows(url, data_dir, a, athlete_a.athlete_id).items() if rows
    }
    # By design, two things stay: the connection, `deauthorized`, its tokens blanked (the app
    # shows why syncing stopped, and a reconnection updates it), and the deauthorization
    # event itself (no activity data; a tick that crashes before deleting the Parquet files
    # finds it again and finishes).
    connections = next(t for t in left if t.endswith("strava_connections"))
    events = next(t for t in left if t.endswith("strava_webhook_events"))
    assert set(left) == {connections, events}, sorted(left)
    assert len(left[connections]) == 1 and "deauthorized" in left[connections][0]
    assert len(left[events]) == 1 and "authorized" in left[events][0]
    (conn_a,) = [c for c in world.store.list_connections(status=None) if c.user_id == a]
    assert conn_a.status == "deauthorized"
    assert conn_a.tokens.access_token.get_secret_value() == ""
    assert conn_a.tokens.refresh_token.get_secret_value() == ""
    # B and the shared tables are untouched, row for row; A's files are gone, B's are not.
    assert user_rows(url, data_dir, b, athlete_b.athlete_id) == rows_b
    after = dump_database(url, data_dir)
    assert {t: rows for t, rows in after.items() if t in shared} == shared
    assert not list(world.parquet.glob(f"*/*/{a}"))
    assert not [p for p in world.parquet.rglob("*") if a in p.name]
    assert sorted(p for p in world.parquet.rglob("*") if b in p.parts) == files_b
    print(
        f"\ndeauthorization: {len(rows_a)} user tables checked "
        f"({sum(map(len, rows_a.values()))} rows of A before, "
        f"{sum(map(len, left.values()))} after), {len(files_a)} Parquet folders of A removed"
    )
