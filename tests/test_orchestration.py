"""Sensors and schedules that make the sync run itself: new users, incremental syncs."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    DagsterInstance,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from sync_assets.assets import raw_strava_activities, runs_table, weather_enriched_activities
from sync_assets.core.clients.tokens import StravaTokens
from sync_assets.core.sessions import SYNC_TYPE_TAG
from sync_assets.core.storage import close_stores, open_store
from sync_assets.partitions import USERS_PARTITIONS_NAME, month_key
from sync_assets.resources import SupabaseResource
from sync_assets.sensors.new_users import new_strava_users
from sync_assets.sensors.schedules import incremental_run_requests, incremental_sync, slot_of

from .helpers import add_users, make_resources, save_tokens

TOKENS = StravaTokens(access_token="a" * 20, refresh_token="r" * 20, expires_at=2_000_000_000)


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


def connect_users(url: str | None, store, n: int) -> list[str]:
    users = [str(uuid.uuid4()) for _ in range(n)]
    if url:
        add_users(url, *users)
    for user in users:
        store.save_connection(user, TOKENS)
    return users


def tick(instance, url, data_dir, cursor=None):
    # `with`: the resource's store lives as long as the tick (closed at its end).
    with build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"supabase": SupabaseResource(database_url=url, data_dir=str(data_dir))},
    ) as ctx:
        return new_strava_users(ctx), ctx


def test_new_users_become_partitions_with_one_history_run_each(backend, instance) -> None:
    url, data_dir = backend
    store = open_store(url, data_dir)
    users = connect_users(url, store, 3)
    store.mark_revoked(users[2], "deauthorized")  # not active: not synced
    result, _ = tick(instance, url, data_dir)
    assert isinstance(result, SensorResult)
    assert {r.run_key for r in result.run_requests} == {f"initial-sync:{u}" for u in users[:2]}
    (add,) = result.dynamic_partitions_requests
    assert add.partitions_def_name == USERS_PARTITIONS_NAME
    assert sorted(add.partition_keys) == sorted(users[:2])
    now = month_key(datetime.now(UTC))
    for request in result.run_requests:
        user = request.run_key.removeprefix("initial-sync:")
        assert request.job_name == "strava_sync"
        assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == f"2009-01-01|{user}"
        assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == f"{now}|{user}"
        assert request.tags[SYNC_TYPE_TAG] == "backfill"
    # A tick that crashed before its cursor was saved is evaluated again: the same run keys,
    # which Dagster launches once, and an add request that changes nothing.
    again, _ = tick(instance, url, data_dir)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in result.run_requests]
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, add.partition_keys)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, add.partition_keys)
    assert sorted(instance.get_dynamic_partitions(USERS_PARTITIONS_NAME)) == sorted(users[:2])
    # With the cursor: nothing new, then only the next user.
    quiet, _ = tick(instance, url, data_dir, result.cursor)
    assert isinstance(quiet, SkipReason)
    (late,) = connect_users(url, store, 1)
    nxt, _ = tick(instance, url, data_dir, result.cursor)
    assert [r.run_key for r in nxt.run_requests] == [f"initial-sync:{late}"]


def test_a_user_id_that_cannot_be_a_partition_key_is_skipped_with_a_warning(
    instance, tmp_path
) -> None:
    store = open_store(None, tmp_path / "data")
    store.save_connection("bad|id", TOKENS)
    store.save_connection("good-id", TOKENS)
    result, _ = tick(instance, None, tmp_path / "data")
    assert [r.run_key for r in result.run_requests] == ["initial-sync:good-id"]
    assert result.dynamic_partitions_requests[0].partition_keys == ["good-id"]
    assert result.cursor  # the bad one is passed, not retried forever
    close_stores()


def test_the_sensors_run_request_syncs_the_whole_history(
    sandbox, server, instance, tmp_path
) -> None:
    data_dir = tmp_path / "data"
    store = open_store(None, data_dir)
    athlete = sandbox.add_athlete(n_activities=250, years=2.0)
    user = str(uuid.uuid4())
    save_tokens(store, user, athlete)
    result, _ = tick(instance, None, data_dir)
    (request,) = result.run_requests
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    run = materialize(
        [raw_strava_activities, weather_enriched_activities, runs_table],
        instance=instance,
        resources=make_resources(sandbox, server, tmp_path, None, data_dir),
        tags=request.tags,
    )
    assert run.success
    assert store.run_ids(user) == [a["id"] for a in sandbox.activities(athlete.athlete_id)]
    assert store.get_session(run.run_id, user).sync_type == "backfill"
    close_stores()


# -- the incremental schedule ----------------------------------------------------------------
def test_each_user_gets_one_slot_a_day_spread_over_the_hours() -> None:
    users = [str(uuid.UUID(int=i)) for i in range(2400)]
    start = datetime(2026, 3, 10, 0, 5, tzinfo=UTC)
    seen: Counter[str] = Counter()
    per_hour = []
    for h in range(24):
        requests, left = incremental_run_requests(
            users, start + timedelta(hours=h), period_hours=24, max_runs=1000
        )
        assert left == 0
        per_hour.append(len(requests))
        seen.update(r.tags[ASSET_PARTITION_RANGE_START_TAG].split("|")[1] for r in requests)
    assert set(seen) == set(users) and set(seen.values()) == {1}
    assert min(per_hour) > 60 and max(per_hour) < 140  # ~100 an hour, not all at midnight
    assert slot_of(users[0], 24) == slot_of(users[0], 24)


def test_the_schedule_stays_inside_the_daily_read_budget(instance, tmp_path, monkeypatch):
    monkeypatch.setenv("STRAVA_READ_DAILY_LIMIT", "240")  # x 0.8 / 24 = 8 runs an hour
    store = open_store(None, tmp_path / "data")
    users = connect_users(None, store, 400)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, users[:390])  # 10 not yet partitions
    total = Counter()
    for h in range(24):
        when = datetime(2026, 3, 1, h, 5, tzinfo=UTC)
        # As a context manager: the context enters the instance and must leave it again.
        with build_schedule_context(
            instance=instance,
            scheduled_execution_time=when,
            resources={"supabase": SupabaseResource(data_dir=str(tmp_path / "data"))},
        ) as ctx:
            requests = incremental_sync(ctx)
        assert isinstance(requests, list) and len(requests) <= 8
        for r in requests:
            user = r.tags[ASSET_PARTITION_RANGE_START_TAG].split("|")[1]
            total[user] += 1
            assert user in users[:390]
            assert r.run_key == f"incremental:{user}:2026-03-01T{h:02d}"
            assert r.tags[SYNC_TYPE_TAG] == "incremental"
            # On the 1st, last month's late uploads are synced too.
            assert r.tags[ASSET_PARTITION_RANGE_START_TAG] == f"2026-02-01|{user}"
            assert r.tags[ASSET_PARTITION_RANGE_END_TAG] == f"2026-03-01|{user}"
    assert sum(total.values()) <= 24 * 8 <= 240 * 0.8
    assert set(total.values()) == {1}
    close_stores()


def test_with_webhooks_on_the_schedule_skips_users_without_news(
    backend, instance, monkeypatch
) -> None:
    url, data_dir = backend
    monkeypatch.setenv("STRAVA_WEBHOOKS", "on")
    monkeypatch.setenv("SYNC_ASSETS_INCREMENTAL_HOURS", "1")  # every user due every hour
    store = open_store(url, data_dir)
    users = [str(uuid.uuid4()) for _ in range(3)]
    if url:
        add_users(url, *users)
    now = datetime.now(UTC)
    for athlete_id, user in enumerate(users, start=501):
        store.save_connection(user, TOKENS, athlete_id=athlete_id)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, users)
    news, synced_since, quiet = users

    def event(athlete_id: int) -> None:
        store.record_webhook_event(
            {
                "subscription_id": 1,
                "object_type": "activity",
                "object_id": 900 + athlete_id,
                "aspect_type": "create",
                "owner_id": athlete_id,
                "event_time": int(now.timestamp()),
                "updates": {},
            }
        )

    def synced(user: str, at: datetime) -> None:
        run_id = str(uuid.uuid4())
        store.create_session(
            run_id=run_id,
            user_id=user,
            sync_type="incremental",
            time_range_start=None,
            time_range_end=None,
        )
        store.update_session(run_id, user, status="completed", completed_at=at)

    synced(news, now - timedelta(hours=1))
    event(501)  # after its last sync: news
    event(502)
    synced(synced_since, now + timedelta(minutes=1))  # the event is already synced
    synced(quiet, now - timedelta(hours=1))  # no event at all
    with build_schedule_context(
        instance=instance,
        scheduled_execution_time=now,
        resources={"supabase": SupabaseResource(database_url=url, data_dir=str(data_dir))},
    ) as ctx:
        requests = incremental_sync(ctx)
    assert [r.run_key.split(":")[1] for r in requests] == [news]
    monkeypatch.setenv("STRAVA_WEBHOOKS", "off")
    with build_schedule_context(
        instance=instance,
        scheduled_execution_time=now,
        resources={"supabase": SupabaseResource(database_url=url, data_dir=str(data_dir))},
    ) as ctx:
        assert len(incremental_sync(ctx)) == 3
