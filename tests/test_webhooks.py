"""Strava webhooks end to end: the sandbox's push subscription -> the receiver -> the database
-> the sensor -> runs, deletions and deauthorization."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._core.test_utils import instance_for_test

from sync_assets.assets import raw_strava_activities, runs_table, weather_enriched_activities
from sync_assets.partitions import USERS_PARTITIONS_NAME, month_key
from sync_assets.resources import SupabaseResource
from sync_assets.sensors.webhooks import strava_webhook_events
from sync_assets.storage import close_stores, open_store
from sync_assets.webhooks import WebhookReceiver, WebhookServer

from .conftest import add_users, make_resources, save_tokens

ASSETS = [raw_strava_activities, weather_enriched_activities, runs_table]
TOKEN = "verify-" + "t" * 16
EVENT = {
    "aspect_type": "create",
    "event_time": 1_790_000_000,
    "object_id": 1_234_567,
    "object_type": "activity",
    "owner_id": 42,
    "subscription_id": 7,
    "updates": {},
}


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


@pytest.fixture
def receiver_store(tmp_path: Path) -> Iterator[object]:
    yield open_store(None, tmp_path / "data")
    close_stores()


def test_the_subscription_handshake_answers_only_the_right_token(receiver_store) -> None:
    with WebhookServer(WebhookReceiver(receiver_store, TOKEN)) as server:
        ok = httpx.get(
            server.url,
            params={"hub.mode": "subscribe", "hub.challenge": "abc123", "hub.verify_token": TOKEN},
        )
        assert ok.status_code == 200 and ok.json() == {"hub.challenge": "abc123"}
        wrong = httpx.get(
            server.url,
            params={"hub.mode": "subscribe", "hub.challenge": "x", "hub.verify_token": "nope"},
        )
        assert wrong.status_code == 403 and "hub.challenge" not in wrong.json()
        assert httpx.get(server.url, params={"hub.mode": "subscribe"}).status_code == 400


def test_events_are_stored_once_and_bad_ones_change_nothing(receiver_store) -> None:
    with WebhookServer(WebhookReceiver(receiver_store, TOKEN, subscription_id=7)) as server:
        first = httpx.post(server.url, content=json.dumps(EVENT))
        again = httpx.post(server.url, content=json.dumps(EVENT))  # Strava redelivers
        assert (first.status_code, first.json()) == (200, {"stored": True})
        assert (again.status_code, again.json()) == (200, {"stored": False})
        for bad in (
            b"not json",
            json.dumps({**EVENT, "object_type": "gear"}).encode(),
            json.dumps({**EVENT, "object_id": -1}).encode(),
            json.dumps({k: v for k, v in EVENT.items() if k != "owner_id"}).encode(),
        ):
            assert httpx.post(server.url, content=bad).status_code == 400
        forged = httpx.post(server.url, content=json.dumps({**EVENT, "subscription_id": 8}))
        assert forged.status_code == 403
        huge = httpx.post(server.url, content=b"{" + b" " * 70_000 + b"}")
        assert huge.status_code == 413
    events = receiver_store.webhook_events_after(0)
    assert len(events) == 1 and events[0]["object_id"] == EVENT["object_id"]


def test_push_events_sync_rename_delete_and_deauthorize(
    sandbox, server, instance, tmp_path, pg_url, monkeypatch
) -> None:
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    monkeypatch.setenv("SYNC_ASSETS_STORAGE_URL", str(tmp_path / "parquet"))
    data_dir = tmp_path / "data"
    store = open_store(pg_url, data_dir)
    resources = make_resources(sandbox, server, tmp_path, pg_url, data_dir)
    athlete = sandbox.add_athlete(n_activities=120, years=1.0)
    user = str(uuid.uuid4())
    add_users(pg_url, user)
    save_tokens(store, user, athlete)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    now = datetime.fromtimestamp(sandbox.now(), UTC)
    history = sandbox.activities(athlete.athlete_id)
    first = month_key(datetime.fromisoformat(history[0]["start_date"]))

    def sync(tags: dict[str, str]):
        result = materialize(ASSETS, instance=instance, resources=resources, tags=tags)
        assert result.success
        return result

    sync(
        {
            ASSET_PARTITION_RANGE_START_TAG: f"{first}|{user}",
            ASSET_PARTITION_RANGE_END_TAG: f"{month_key(now)}|{user}",
        }
    )
    assert len(store.run_ids(user)) == 120

    # The app subscribes through Strava's API; the sandbox validates the callback first.
    with WebhookServer(WebhookReceiver(store, TOKEN)) as hook:
        form = {
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "callback_url": hook.url,
            "verify_token": TOKEN,
        }
        bad = httpx.post(f"{server.api_url}/push_subscriptions", data={**form, "verify_token": "x"})
        assert bad.status_code == 400
        sub = httpx.post(f"{server.api_url}/push_subscriptions", data=form)
        assert sub.status_code == 200 and sub.json()["id"] >= 1

        new = sandbox.add_activity(athlete.athlete_id)  # an upload, two hours ago
        old = history[10]
        sandbox.update_activity(athlete.athlete_id, old["id"], name="Renamed on Strava")
        gone = history[20]
        sandbox.delete_activity(athlete.athlete_id, gone["id"])
        sandbox.push.flush()
        assert len(sandbox.push.delivered) == 3 and not sandbox.push.failed

    ctx = build_sensor_context(
        instance=instance,
        resources={"supabase": SupabaseResource(database_url=pg_url, data_dir=str(data_dir))},
    )
    result = strava_webhook_events(ctx)
    assert isinstance(result, SensorResult)
    assert gone["id"] not in store.run_ids(user)  # deleted at once, no Strava request
    months = {
        (r.tags[ASSET_PARTITION_RANGE_START_TAG], r.tags[ASSET_PARTITION_RANGE_END_TAG])
        for r in result.run_requests
    }
    old_month = month_key(datetime.fromisoformat(old["start_date"]))
    assert (f"{old_month}|{user}", f"{old_month}|{user}") in months or any(
        s <= f"{old_month}|{user}" <= e for s, e in months
    )
    assert all(r.tags["sync_assets/sync_type"] == "webhook" for r in result.run_requests)
    for request in result.run_requests:
        sync(request.tags)
    ids = store.run_ids(user)
    assert new["id"] in ids and gone["id"] not in ids and len(ids) == 120
    import psycopg

    with psycopg.connect(pg_url) as conn:
        name = conn.execute(
            "select name from public.runs where strava_id = %s", (old["id"],)
        ).fetchone()[0]
    assert name == "Renamed on Strava"
    # The same tick again (a crash before the cursor was saved): the same run keys.
    assert [r.run_key for r in strava_webhook_events(ctx).run_requests] == [
        r.run_key for r in result.run_requests
    ]
    ctx_next = build_sensor_context(
        instance=instance,
        cursor=result.cursor,
        resources={"supabase": SupabaseResource(database_url=pg_url, data_dir=str(data_dir))},
    )
    assert isinstance(strava_webhook_events(ctx_next), SkipReason)

    # The athlete deauthorizes the app: every row and file of their Strava data goes.
    assert list((tmp_path / "parquet").glob(f"*/*/{user}"))
    with WebhookServer(WebhookReceiver(store, TOKEN)) as hook:
        sandbox.push.unsubscribe(sub.json()["id"])
        sandbox.push.subscribe(hook.url, TOKEN)
        sandbox.revoke(athlete.athlete_id)
        sandbox.push.flush()
    result = strava_webhook_events(ctx_next)
    assert result.dynamic_partitions_requests[0].partition_keys == [user]
    assert store.run_ids(user) == []
    with psycopg.connect(pg_url) as conn:
        for table in ("runs", "activity_quarantine", "sync_staging"):
            count = conn.execute(
                f"select count(*) from public.{table} where user_id = %s", (user,)
            ).fetchone()[0]
            assert count == 0, table
        status, access = conn.execute(
            "select status, access_token_encrypted from public.strava_connections "
            "where user_id = %s",
            (user,),
        ).fetchone()
    assert status == "deauthorized"
    (conn_row,) = [c for c in store.list_connections(status=None) if c.user_id == user]
    assert conn_row.tokens.access_token.get_secret_value() == ""  # no token kept
    assert conn_row.tokens.refresh_token.get_secret_value() == ""
    assert not list((tmp_path / "parquet").glob(f"*/*/{user}"))
    close_stores()
