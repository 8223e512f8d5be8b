"""After an athlete deauthorizes the app, nothing of theirs is written again (issue 18).

A sync held mid-run by the sandbox (`hold_after_requests`) while the athlete deauthorizes
through the real path (Strava's push event -> the receiver -> `strava_webhook_events`) must,
once released, write no row or file of that athlete: the store checks the connection inside
each writing transaction. On PostgreSQL a write already inside its transaction when the
deletion comes commits first and is then deleted by it (the deletion waits on its lock).
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from dagster import DagsterEventType, DagsterInstance, build_sensor_context, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._core.test_utils import instance_for_test
from sync_assets_sandbox import generate_activities

from sync_assets.apps.webhooks import WebhookReceiver, WebhookServer
from sync_assets.assets import raw_strava_activities, runs_table, weather_enriched_activities
from sync_assets.core.clients.strava_listing import ListCursor
from sync_assets.core.clients.tokens import StravaTokens
from sync_assets.core.models import activities_table, activity_row, validate_page
from sync_assets.core.storage import QuarantineRecord, open_store, runs_rows
from sync_assets.core.storage.base import DeauthorizedError, ListingWatermark
from sync_assets.partitions import USERS_PARTITIONS_NAME, month_key
from sync_assets.sensors.webhooks import strava_webhook_events

from .helpers import add_users, connect_user, make_resources, polling

ASSETS = [raw_strava_activities, weather_enriched_activities, runs_table]
VERIFY_TOKEN = "verify-" + secrets.token_hex(8)
# Every table holding a user's Strava data or what was derived from it, by user_id.
USER_TABLES = (
    "runs",
    "activity_quarantine",
    "sync_staging",
    "sync_sessions",
    "strava_listing_watermarks",
    "strava_deleted_activities",
)


@pytest.fixture
def instance():
    with instance_for_test() as inst:
        yield inst


def user_rows(url: str | None, data_dir: Path, user: str) -> dict[str, int]:
    """How many rows of `user` each user table holds."""
    if url:
        with psycopg.connect(url, autocommit=True) as conn:
            return {
                t: conn.execute(
                    f"select count(*) from public.{t} where user_id = %s", (user,)
                ).fetchone()[0]
                for t in USER_TABLES
            }
    with sqlite3.connect(data_dir / "sync_assets.db") as conn:
        return {
            t: conn.execute(f"select count(*) from {t} where user_id = ?", (user,)).fetchone()[0]
            for t in USER_TABLES
        }


def connect(sandbox, store, url: str | None, instance: DagsterInstance, n: int):
    user, athlete = connect_user(store, sandbox, url, n, years=2)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    return user, athlete


def make_rows(user_id: str, n: int) -> list[dict]:
    """`n` valid `runs` rows of the user, as a sync stores them."""
    acts = generate_activities(7, 99, n, end=datetime(2026, 1, 1, tzinfo=UTC))
    now = datetime(2026, 1, 2, tzinfo=UTC)
    page = validate_page(acts)
    return runs_rows(
        activities_table([activity_row(user_id, a, q, now) for a, q in page.activities])
    )


def wait_for(condition: Callable[[], object], what: str) -> float:
    """`polling.wait_for`, polled often: the timings below are short."""
    return polling.wait_for(condition, what, timeout=120.0, interval=0.05)


def test_a_sync_held_while_its_athlete_deauthorizes_writes_nothing_after(
    backend, sandbox, server, instance, tmp_path: Path, monkeypatch
) -> None:
    url, data_dir = backend
    parquet = tmp_path / "parquet"
    monkeypatch.setenv("SYNC_ASSETS_STORAGE_URL", str(parquet))
    resources = make_resources(sandbox, server, tmp_path, url, data_dir, step_retries=0)
    store = open_store(url, data_dir)
    user, athlete = connect(sandbox, store, url, instance, 900)  # 5 list pages
    acts = sandbox.activities(athlete.athlete_id)
    first = month_key(datetime.fromisoformat(acts[0]["start_date"]))
    last = month_key(datetime.fromtimestamp(sandbox.now(), UTC))
    tags = {
        ASSET_PARTITION_RANGE_START_TAG: f"{first}|{user}",
        ASSET_PARTITION_RANGE_END_TAG: f"{last}|{user}",
    }
    # Two list pages answered, the third held: the sync is mid-run, its session open, two
    # pages staged, perhaps a month's file written.
    sandbox.set_faults(hold_after_requests=2)
    outcome: dict[str, object] = {}

    def sync() -> None:
        outcome["result"] = materialize(
            ASSETS, instance=instance, resources=resources, tags=tags, raise_on_error=False
        )

    worker = threading.Thread(target=sync, name="held-sync")
    worker.start()
    try:
        wait_for(lambda: sandbox.request_count(kind="api") >= 3, "the held request")
        wait_for(lambda: user_rows(url, data_dir, user)["sync_staging"] >= 2, "2 staged pages")
        before = user_rows(url, data_dir, user)
        assert before["sync_sessions"] == 1 and before["sync_staging"] == 2, before

        # The athlete revokes the app on Strava; Strava pushes `authorized: "false"` to the
        # receiver, and the webhook sensor deletes the athlete's rows and files.
        with WebhookServer(WebhookReceiver(store, VERIFY_TOKEN)) as hook:
            assert sandbox.push.subscribe(hook.url, VERIFY_TOKEN)[0] == 200
            sandbox.revoke(athlete.athlete_id)
            sandbox.push.flush()
            assert not sandbox.push.failed
        sensor_resources = {"supabase": resources["supabase"], "strava": resources["strava"]}
        with build_sensor_context(instance=instance, resources=sensor_resources) as ctx:
            result = strava_webhook_events(ctx)
        assert result.dynamic_partitions_requests[0].partition_keys == [user]
        assert store.connection_status(user) == "deauthorized"
        assert not any(user_rows(url, data_dir, user).values())
    finally:
        released = time.monotonic()
        sandbox.set_faults(hold_after_requests=None)  # the held page 3 is answered now
        worker.join(timeout=300)
    assert not worker.is_alive()
    ended = time.monotonic() - released

    run = outcome["result"]
    assert not run.success
    failures = [e for e in run.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert [e.step_key for e in failures] == ["raw_strava_activities"]
    failure = failures[0].step_failure_data
    reason = failure.user_failure_data.description if failure.user_failure_data else ""
    assert "AUTHENTICATION: athlete deauthorized" in reason, failure
    # Nothing of the athlete was written after the deletion: no row in any table (the held
    # page's staging, its checkpoint, the session's failure were refused), no file.
    assert user_rows(url, data_dir, user) == dict.fromkeys(USER_TABLES, 0)
    assert not [p for p in parquet.rglob("*") if user in p.parts]
    print(
        f"\ndeauthorization of a held sync ({'postgres' if url else 'sqlite'}): "
        f"{before['sync_staging']} staged pages and 1 session deleted; released, the run "
        f"ended failed in {ended:.2f} s ('athlete deauthorized'), 0 rows and 0 files after"
    )


def test_every_write_of_a_deauthorized_users_data_is_refused(backend, instance) -> None:
    url, data_dir = backend
    store = open_store(url, data_dir)
    user = str(uuid.uuid4())
    if url:
        add_users(url, user)
    tokens = StravaTokens(access_token="a", refresh_token="r", expires_at=2_000_000_000)
    store.save_connection(user, tokens, athlete_id=4242, scopes="read,activity:read_all")
    session = store.create_session(
        run_id="run-1",
        user_id=user,
        sync_type="backfill",
        time_range_start=None,
        time_range_end=None,
    )
    store.delete_user_data(user, "the athlete deauthorized the app (test)")
    when = datetime(2026, 1, 5, tzinfo=UTC)
    rows = make_rows(user, 3)
    writes = {
        "runs": lambda: store.upsert_runs(rows),
        "quarantine": lambda: store.quarantine([QuarantineRecord(user, 2, "bad", "{}", "fetch")]),
        "staging": lambda: store.stage_page(
            user, "2026-01/2026-01", 1, ListCursor(after=0, before=1, order="ascending"), "[]"
        ),
        "new session": lambda: store.create_session(
            run_id="run-2",
            user_id=user,
            sync_type="backfill",
            time_range_start=None,
            time_range_end=None,
        ),
        "session update": lambda: store.update_session(
            session.dagster_run_id, user, status="fetching_activities"
        ),
        "watermark": lambda: store.advance_listing_watermark(user, ListingWatermark(when, when)),
    }
    for name, write in writes.items():
        with pytest.raises(DeauthorizedError, match="athlete deauthorized"):
            write()
        assert not any(user_rows(url, data_dir, user).values()), name
    # A reconnection (OAuth again) makes the athlete's data writable again.
    store.save_connection(user, tokens, athlete_id=4242, scopes="read,activity:read_all")
    assert store.upsert_runs(rows).saved == 3


def test_postgres_a_write_inside_its_transaction_commits_before_the_deletion_deletes_it(
    pg_url, monkeypatch
) -> None:
    """The lock ordering: the deletion locks the connection row `for update` first, which
    waits for a write holding it `for share`; the write commits, the deletion then sees its
    rows and deletes them. Nothing of the user is left."""
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    store = open_store(pg_url, Path("/nonexistent"))
    deleter = open_store(pg_url, Path("/nonexistent"))
    user = str(uuid.uuid4())
    add_users(pg_url, user)
    tokens = StravaTokens(access_token="a", refresh_token="r", expires_at=2_000_000_000)
    store.save_connection(user, tokens, athlete_id=4343, scopes="read,activity:read_all")
    inside, proceed = threading.Event(), threading.Event()

    def hold(conn) -> None:  # noqa: ANN001 - psycopg.Connection, inside the batch's transaction
        inside.set()
        assert proceed.wait(60)

    store.before_merge = hold
    rows = make_rows(user, 5)
    written: dict[str, object] = {}
    writer = threading.Thread(target=lambda: written.update(r=store.upsert_runs(rows)))
    writer.start()
    assert inside.wait(60)
    deletion = threading.Thread(
        target=lambda: deleter.delete_user_data(user, "deauthorized while a batch was written")
    )
    deletion.start()
    waited = wait_for(lambda: _waits_on_a_lock(pg_url), "the deletion to wait on the write")
    proceed.set()
    writer.join(60)
    deletion.join(60)
    assert written["r"].saved == 5  # the write committed first...
    with psycopg.connect(pg_url, autocommit=True) as conn:
        left = conn.execute("select count(*) from public.runs where user_id = %s", (user,))
        assert left.fetchone()[0] == 0  # ...and the deletion, after it, took its rows
    assert store.connection_status(user) == "deauthorized"
    store.before_merge = None
    with pytest.raises(DeauthorizedError):
        store.upsert_runs(rows)
    print(f"\nthe deletion waited on the write's lock (seen after {waited:.2f} s), then deleted")
    store.close()
    deleter.close()


def _waits_on_a_lock(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from pg_stat_activity where datname = current_database()"
            " and wait_event_type = 'Lock' and query ilike '%strava_connections%'"
        ).fetchone()
    return row[0] > 0
