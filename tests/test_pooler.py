"""Through a real transaction pooler: PgBouncer in transaction mode (the rules of Supabase's
pooler on port 6543: no session state, no server-side prepared statements, no session advisory
locks, no LISTEN) on a free loopback port that is never 6543, in front of the test PostgreSQL.

Everything the pipeline does goes through it: a new user's whole path (`db init`, `connect`,
`sync` with its fetch, weather under per-cell locks, store and sessions, progress on stderr),
migrations by several first starts at once, the shared Strava budget under 8 concurrent runs,
the webhook receiver's group commit and the new-user sensor. A LISTEN for progress is the one
thing a transaction pooler cannot carry: the listener connects directly, and still hears the
changes the pipeline wrote through the pooler.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pyarrow.parquet as pq
import pytest
from cryptography.fernet import Fernet
from dagster import SkipReason, build_sensor_context, instance_for_test

from sync_assets.apps import cli
from sync_assets.apps.webhooks import WebhookReceiver, WebhookServer
from sync_assets.core.clients.rate_limit import SharedRateLimitBudget, app_key
from sync_assets.core.clients.tokens import StravaTokens
from sync_assets.core.storage import close_stores, open_store
from sync_assets.core.storage.crypto import TokenCipher, keys_from_env
from sync_assets.core.storage.postgres import PostgresStore
from sync_assets.partitions import month_key
from sync_assets.resources import SupabaseResource
from sync_assets.sensors.new_users import new_strava_users

from .helpers import CLI, add_users, sandbox_env, save_tokens
from .helpers.pgbouncer import SUPABASE_POOLER_PORT, PgBouncer
from .pg import temporary_database
from .test_shared_budget import RUNS, TIGHT, advance, dagster_runs_at_once, fetch_concurrently

TOKENS = StravaTokens(access_token="a" * 20, refresh_token="r" * 20, expires_at=2_000_000_000)


@pytest.fixture
def pooler() -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode with its own defaults (20 server connections a pool)."""
    with PgBouncer() as bouncer:
        yield bouncer


@pytest.fixture
def tight_pooler() -> Iterator[PgBouncer]:
    """Two server connections for every client: each transaction lands on whichever is free,
    so statements of one client run on several server connections and several clients share
    each one (what a busy Supabase pooler does)."""
    with PgBouncer({"default_pool_size": 2}) as bouncer:
        yield bouncer


@pytest.fixture
def keys(monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    yield
    close_stores()


def _pool_of(bouncer: PgBouncer, direct_url: str) -> dict[str, object]:
    """PgBouncer's pool of the database: it exists once a client went through it."""
    database = direct_url.rsplit("/", 1)[1]
    (pool,) = [p for p in bouncer.show("POOLS") if p["database"] == database]
    return pool


def test_the_fixture_is_a_transaction_pooler_on_another_port_than_6543(pooler) -> None:
    config = {row["key"]: row["value"] for row in pooler.show("CONFIG")}
    assert config["pool_mode"] == "transaction"
    assert int(config["listen_port"]) == pooler.port != SUPABASE_POOLER_PORT
    # What Debian 12's PgBouncer (1.18) knows of prepared statements: nothing (1.21 added
    # max_prepared_statements); a newer one keeps its default, 0 (off) before 1.22's 200.
    assert int(config.get("max_prepared_statements", 0)) in (0, 200)


def test_stores_sharing_server_connections_never_meet_a_prepared_statement(
    tight_pooler, pg_url, keys
) -> None:
    """A new user's first weather step failed behind PgBouncer on port 6432: the pooler was
    recognised by its port, so psycopg prepared statements after five runs of one, and the
    next client on that server connection found the name taken. Now no URL turns them on:
    three stores, one server connection each at most, the same reads many times over."""
    url = tight_pooler.url(pg_url)
    stores = [open_store(url, "unused") for _ in range(3)]  # migrated through the pooler
    users = [str(uuid.uuid4()) for _ in stores]
    add_users(pg_url, *users)
    for store, user in zip(stores, users, strict=True):
        store.save_connection(user, TOKENS)
    for _ in range(12):  # past psycopg's prepare_threshold (5) on every connection
        for store, user in zip(stores, users, strict=True):
            assert store.get(user).user_id == user
            assert store.run_sessions(str(uuid.uuid4())) == []
    for store in stores:
        store.close()
    with psycopg.connect(pg_url) as conn:  # nothing was left prepared on the server side
        assert conn.execute("select count(*) from pg_prepared_statements").fetchone()[0] == 0
    assert _pool_of(tight_pooler, pg_url)["pool_mode"] == "transaction"


def test_four_first_starts_migrate_at_once_through_the_pooler(tight_pooler, pg_url, keys) -> None:
    """The migrations are one transaction under a transaction-scoped advisory lock: a
    transaction pooler keeps both on one server connection. Four first starts at once apply
    each migration once, and nobody fails."""
    url = tight_pooler.url(pg_url)
    applied: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def first_start() -> None:
        store = PostgresStore(url, TokenCipher(keys_from_env()))
        try:
            start.wait()
            applied.append(store.migrate())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=first_start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    (done,) = [names for names in applied if names]  # one applied them, the others none
    assert len(done) >= 15 and sorted(done) == done
    assert sorted(map(len, applied)) == [0, 0, 0, len(done)]
    with psycopg.connect(pg_url) as conn:
        count = conn.execute("select count(*) from supabase_migrations.schema_migrations")
        assert count.fetchone()[0] == len(done)


def _listen(url: str, got: list[dict], ready: threading.Event, stop: threading.Event) -> None:
    """A front end's LISTEN: on the direct connection, the only place it works."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("LISTEN sync_sessions")
        ready.set()
        while not stop.is_set():
            for note in conn.notifies(timeout=0.2, stop_after=1):
                got.append(json.loads(note.payload))


def test_a_new_user_syncs_through_the_pooler_from_a_bare_database(
    pooler, sandbox, server, tmp_path, pg_roles, monkeypatch, capsys
) -> None:
    """The README's path with DATABASE_URL on PgBouncer (its defaults, transaction mode):
    `db init --plain-postgres`, `connect --create-auth-user`, then `sync` in a process of its
    own as a user runs it. The sync fetches, enriches with weather (its cells locked across
    runs), stores and writes its session through the pooler; its progress shows on stderr; a
    listener on the direct connection hears the session move."""
    with temporary_database("sa_pooled") as direct:
        url = pooler.url(direct)
        env = sandbox_env(
            sandbox,
            server,
            tmp_path / "home",
            DATABASE_URL=url,
            SYNC_ASSETS_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        )
        for name in ("DATABASE_URL", "SYNC_ASSETS_ENCRYPTION_KEYS", "SYNC_ASSETS_HOME"):
            monkeypatch.setenv(name, env[name])
        for name in ("STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET", "STRAVA_API_URL"):
            monkeypatch.setenv(name, env[name])
        monkeypatch.setenv("STRAVA_OAUTH_URL", env["STRAVA_OAUTH_URL"])
        athlete = sandbox.add_athlete(n_activities=420, years=2.0)
        user = str(uuid.uuid4())

        t0 = time.perf_counter()
        assert cli.main(["db", "init", "--plain-postgres"]) == 0
        applied = capsys.readouterr().out
        assert re.search(rf"applied \d+ migrations to 127\.0\.0\.1:{pooler.port}/", applied)
        connect = ["connect", "--user", user, "--refresh-token", athlete.refresh_token]
        assert cli.main([*connect, "--create-auth-user"]) == 0
        close_stores()
        got: list[dict] = []
        ready, stop = threading.Event(), threading.Event()
        listener = threading.Thread(target=_listen, args=(direct, got, ready, stop), daemon=True)
        listener.start()
        assert ready.wait(10)
        first = sandbox.activities(athlete.athlete_id)[0]["start_date"][:7]
        synced = subprocess.run(  # its months, not every month since 2009
            [CLI, "sync", "--user", user, "--from", first],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        took = time.perf_counter() - t0
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert "Traceback" not in synced.stderr
        deadline = time.monotonic() + 10  # the last notification may still be on its way
        while not any(n["status"] == "completed" for n in got) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        listener.join(5)

        assert "420 activities" in synced.stdout, synced.stdout
        assert "stored 420 new, 0 updated, 0 unchanged" in synced.stdout
        weather = re.search(r"weather: (\d+) enriched, (\d+) pending, (\d+) failed", synced.stdout)
        assert weather and int(weather.group(1)) > 0 and weather.group(3) == "0", synced.stdout
        progress = [line for line in synced.stderr.splitlines() if not line.startswith("{")]
        assert progress[0] == "fetching: 420 activities in 3 pages", synced.stderr
        assert re.fullmatch(r"enriching: \d+ activities with weather, \d+ weather requests?",
                            progress[1]), synced.stderr  # fmt: skip
        assert progress[2] == "storing: 420 rows (420 new)"
        assert progress[3].startswith("completed in ")
        truth = sorted(a["id"] for a in sandbox.activities(athlete.athlete_id))
        with psycopg.connect(direct) as conn:
            ids = conn.execute(
                "select strava_id from public.runs where user_id = %s order by 1", (user,)
            ).fetchall()
            assert [r[0] for r in ids] == truth
            (status,) = conn.execute(
                "select status from public.sync_sessions where user_id = %s", (user,)
            ).fetchone()
            assert status == "completed"
            assert conn.execute("select count(*) from public.weather_cache").fetchone()[0] > 0
        mine = [n for n in got if n["user_id"] == user]
        assert [n["status"] for n in mine][-1] == "completed"
        assert any(n["status"] == "enriching_weather" for n in mine)
        assert _pool_of(pooler, direct)["pool_mode"] == "transaction"
        print(f"\npooled new user: db init + connect + sync of 420 activities in {took:.1f} s")


def test_eight_runs_share_the_strava_budget_through_the_pooler(
    sandbox, server, tight_pooler, pg_url, keys
) -> None:
    """test_shared_budget's eight concurrent runs (a pool and a budget each, one budget row)
    against 12 reads a window, with two server connections between them all: every
    `budget_take` is a row lock in one short transaction, so none fails or double-spends."""
    sandbox.set_limits(TIGHT)
    sandbox.set_clock(datetime(2026, 6, 1, 10, 0, 3, tzinfo=UTC).timestamp())
    app = app_key(server.api_url, sandbox.client_id)
    lock = threading.Lock()
    t0 = time.perf_counter()
    got, truth, budgets = fetch_concurrently(
        sandbox,
        server,
        tight_pooler.url(pg_url),
        lambda store: SharedRateLimitBudget(
            store, app, max_wait_seconds=3600, clock=sandbox.now, sleep=advance(sandbox, lock)
        ),
    )
    took = time.perf_counter() - t0
    assert got == {u: sorted(ids) for u, ids in truth.items()}
    statuses = [r["status"] for r in sandbox.requests if r["kind"] == "api"]
    assert statuses.count(429) == 0
    assert len(statuses) == RUNS * 3
    assert sum(b.waits for b in budgets) > 0
    print(f"\npooled shared budget: {RUNS} runs, {len(statuses)} requests in {took:.1f} s")


@pytest.mark.serial  # eight Dagster processes timed against one budget
def test_eight_dagster_runs_share_the_budget_through_the_pooler(
    sandbox, server, pooler, pg_url, keys, tmp_path
) -> None:
    """Eight Dagster runs in eight processes at once (a store, a shared budget and a fetch
    each, test_shared_budget's runs), every one through PgBouncer with its defaults, against a
    window of exactly the 24 reads they need: nobody meets a 429, every activity is written
    once, the budget row counted every request."""
    sandbox.set_limits(replace(TIGHT, read_15min=RUNS * 3, overall_15min=RUNS * 6))
    url = pooler.url(pg_url)
    store = open_store(url, tmp_path / "data")
    users, truth = [], {}
    for _ in range(RUNS):
        athlete = sandbox.add_athlete(n_activities=450, years=1.0)
        user = str(uuid.uuid4())
        add_users(pg_url, user)
        save_tokens(store, user, athlete)
        users.append(user)
        truth[user] = sorted(a["id"] for a in sandbox.activities(athlete.athlete_id))
    now = datetime.fromtimestamp(sandbox.now(), UTC)
    first, last = month_key(now - timedelta(days=370)), month_key(now)
    common = {
        "pg": url,
        "data_dir": str(tmp_path / "data"),
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "api_url": server.api_url,
        "oauth_url": server.oauth_url,
        "weather_url": server.weather_url,
        "first": first,
        "last": last,
    }
    t0 = 0.0

    def go() -> None:
        nonlocal t0
        sandbox.reset_usage()
        sandbox.clear_requests()
        t0 = time.perf_counter()

    results = dagster_runs_at_once(common, users, lambda u: tmp_path / u, before_go=go)
    took = time.perf_counter() - t0
    assert results == [True] * RUNS
    statuses = [r["status"] for r in sandbox.requests if r["kind"] == "api"]
    assert statuses.count(429) == 0 and len(statuses) == RUNS * 3
    for user in users:
        files = (tmp_path / user).rglob("activities.parquet")
        ids = sorted(i for f in files for i in pq.read_table(f).column("strava_id").to_pylist())
        assert ids == truth[user]
    row = store.budget_state(app_key(server.api_url, sandbox.client_id))
    assert row["read_usage_day"] == RUNS * 3  # no take lost between processes
    print(f"\npooled Dagster runs: {RUNS} processes in {took:.1f} s")


def test_the_webhook_receiver_group_commits_through_the_pooler(tight_pooler, pg_url, keys):
    """A small burst (300 events from 8 clients) into the receiver writing through the pooler:
    every 200 is stored once, and batches hold several events (group commit)."""
    store = open_store(tight_pooler.url(pg_url), "unused")
    events = [
        {
            "aspect_type": "create",
            "event_time": 1_790_000_000,
            "object_id": 500_000 + i,
            "object_type": "activity",
            "owner_id": 42,
            "subscription_id": 7,
            "updates": {},
        }
        for i in range(300)
    ]
    receiver = WebhookReceiver(store, "verify-" + "t" * 16, subscription_id=7)
    statuses: list[int] = []
    with WebhookServer(receiver) as hooks, httpx.Client(timeout=30) as http:
        lock = threading.Lock()

        def post(chunk: list[dict]) -> None:
            for ev in chunk:
                # Strava redelivers what got a 503 (a full queue).
                for _ in range(200):
                    status = http.post(hooks.url, content=json.dumps(ev)).status_code
                    if status != 503:
                        break
                    time.sleep(0.02)
                with lock:
                    statuses.append(status)

        threads = [threading.Thread(target=post, args=(events[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stats = replace(receiver.stats)
    assert Counter(statuses) == {200: len(events)}
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("select object_id from public.strava_webhook_events").fetchall()
    assert Counter(r[0] for r in rows) == Counter(e["object_id"] for e in events)
    assert stats.batches < stats.written == len(events)


def test_the_new_user_sensor_ticks_through_the_pooler(tight_pooler, pg_url, keys) -> None:
    """Its ticks read the connections through the pooler (a store of their own each): the
    users connected, then nothing new, then only the one connected since."""
    url = tight_pooler.url(pg_url)
    store = open_store(url, "unused")

    def connect(n: int) -> list[str]:
        users = [str(uuid.uuid4()) for _ in range(n)]
        add_users(pg_url, *users)
        for user in users:
            store.save_connection(user, TOKENS)
        return users

    def tick(cursor: str | None):  # noqa: ANN202 - a SensorResult or a SkipReason
        resources = {"supabase": SupabaseResource(database_url=url, data_dir="unused")}
        with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as ctx:
            return new_strava_users(ctx)

    users = connect(3)
    with instance_for_test() as instance:
        first = tick(None)
        assert sorted(r.run_key for r in first.run_requests) == sorted(
            f"initial-sync:{u}" for u in users
        )
        assert isinstance(tick(first.cursor), SkipReason)
        (late,) = connect(1)
        assert [r.run_key for r in tick(first.cursor).run_requests] == [f"initial-sync:{late}"]
