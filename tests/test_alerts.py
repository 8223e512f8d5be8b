"""The alerts, each driven to fire: as `sync_health`'s asset checks and through the sensor."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from dagster import (
    AssetCheckKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    build_sensor_context,
    define_asset_job,
    instance_for_test,
)
from psycopg_pool import PoolTimeout
from sync_assets_sandbox import RateLimits

from sync_assets.assets.health import SYNC_HEALTH, health_checks, sync_health
from sync_assets.core import alerts, metrics
from sync_assets.core.errors import ErrorInfo, ErrorType
from sync_assets.core.sessions import SessionTracker, SyncState
from sync_assets.core.storage import Store, open_store
from sync_assets.core.storage.postgres import PostgresStore
from sync_assets.partitions import USERS_PARTITIONS_NAME
from sync_assets.sensors.alerts import sync_health_sensor

from .helpers import (
    add_users,
    connect_user,
    make_resources,
    sync_range,
    whole_history,
)


def _sessions(store: Store, url: str | None, completed: int, failed: int) -> None:
    users = [str(uuid.uuid4()) for _ in range(3)]
    if url:
        add_users(url, *users)
    for i in range(completed + failed):
        tracker = SessionTracker(
            store, run_id=str(uuid.uuid4()), user_id=users[i % 3], min_interval=0
        )
        tracker.enter(SyncState.FETCHING, activities_fetched=100)
        if i < failed:
            tracker.fail(
                ErrorInfo(type=ErrorType.SERVER, message="Strava answered 503", retryable=True)
            )
        else:
            tracker.complete(activities_stored=100)
        # Every sync took one minute: wall-clock milliseconds on a loaded machine would make
        # one of them "twice the usual" and fire the slow-sync alert at random.
        began = tracker.session.started_at
        store.update_session(
            tracker.run_id, tracker.user_id, completed_at=began + timedelta(minutes=1)
        )


def test_failure_rate_fires_over_five_percent(backend) -> None:
    url, data_dir = backend
    store = open_store(url, data_dir)
    _sessions(store, url, completed=24, failed=1)  # 4 %: calm
    calm = alerts.failure_rate(store)
    assert not calm.fired and calm.figure.startswith("1 of the last 25 syncs failed (4.0%")
    _sessions(store, url, completed=0, failed=1)  # 2 of 26: 7.7 %
    alert = alerts.failure_rate(store)
    assert alert.fired, alert.figure
    assert alert.figure.startswith("2 of the last 26 syncs failed (7.7%")
    assert alert.metadata["failure_rate"] == round(2 / 26, 4)
    assert "SERVER Strava answered 503" in alert.metadata["latest_failures"]


def _timed_session(store: Store, user: str, activities: int, seconds: float) -> str:
    tracker = SessionTracker(store, run_id=str(uuid.uuid4()), user_id=user, min_interval=0)
    tracker.enter(SyncState.FETCHING, activities_fetched=activities)
    started = tracker.session.started_at
    tracker.complete(activities_stored=activities)
    store.update_session(tracker.run_id, user, completed_at=started + timedelta(seconds=seconds))
    return tracker.run_id


def _usual_syncs(backend: tuple[str | None, Path]) -> tuple[Store, str]:
    """A user whose five completed syncs of 450 activities make the usual 21 s for 200-999."""
    url, data_dir = backend
    store = open_store(url, data_dir)
    user = str(uuid.uuid4())
    if url:
        add_users(url, user)
    for seconds in (20, 22, 25, 19, 21):
        _timed_session(store, user, 450, seconds)
    return store, user


def test_slow_sync_fires_at_twice_the_usual_duration_for_its_size(backend) -> None:
    store, user = _usual_syncs(backend)
    for seconds in (300, 320, 310, 305, 290):  # 5,000+: 305 s
        _timed_session(store, user, 6_000, seconds)
    # 280 s is ordinary for a big history: no alert, whatever its absolute length.
    _timed_session(store, user, 7_500, 280)
    now = max(s.completed_at for s in store.recent_sessions(limit=50)) + timedelta(seconds=1)
    assert not alerts.slow_syncs(store, now=now).fired

    slow_run = _timed_session(store, user, 600, 50)  # 2.4x the usual 21 s
    now = max(s.completed_at for s in store.recent_sessions(limit=50)) + timedelta(seconds=1)
    alert = alerts.slow_syncs(store, now=now)
    assert alert.fired
    assert alert.metadata["worst_run"] == slow_run
    # SQLite keeps whole seconds: durations come back up to 1 s shorter there.
    assert alert.metadata["usual_seconds"] in (20, 21) and 2.3 < alert.metadata["ratio"] < 2.5
    assert re.search(
        r"\(600 activities\), took (49|50) s = 2\.[345]x the usual 2[01] s", alert.figure
    )


def test_a_running_sync_is_judged_once_its_size_is_known(backend) -> None:
    store, user = _usual_syncs(backend)
    listing = SessionTracker(store, run_id=str(uuid.uuid4()), user_id=user, min_interval=0)
    listing.enter(SyncState.FETCHING, activities_fetched=400)  # more pages may follow
    later = listing.session.started_at + timedelta(seconds=200)
    assert not alerts.slow_syncs(store, now=later).fired  # its size is not known yet
    listing.enter(SyncState.ENRICHING)  # listed: 400 activities, in 200-999
    alert = alerts.slow_syncs(store, now=later)
    assert alert.fired and alert.metadata["worst_run"] == listing.run_id
    assert "(400 activities), running for 200 s" in alert.figure


def test_api_quota_fires_from_a_real_sync(
    pg_url, sandbox, server, tmp_path: Path, data_dir: Path, monkeypatch
) -> None:
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    """A sync that spends 9 of an app's 10 reads per 15 minutes fires the Strava quota; the
    weather calls it charged fire the weather quota once the hourly limit is tight."""
    store = open_store(pg_url, data_dir)
    user, athlete = connect_user(store, sandbox, pg_url, 1_650, years=1)
    sandbox.set_limits(RateLimits(read_15min=10, overall_15min=20))
    resources = make_resources(sandbox, server, tmp_path, pg_url, data_dir, shared_budget=True)
    first, last = whole_history(sandbox, athlete)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
        assert sync_range(instance, resources, user, first, last).success

    strava_usage = resources["strava"].budget().usage()
    assert strava_usage["read_usage_15min"] == 9  # 8 full pages and the closing one
    weather = resources["weather"]
    alert = alerts.api_quota(strava_usage, store, weather.limits())
    assert alert.fired
    assert alert.figure.startswith("strava read 15 min past 80%; highest: strava read 15 min 9/10")
    assert alert.metadata["strava_read_15_min"] == 0.9

    spent = sum(
        m.api_quota_used
        for m in store.step_metrics(since=datetime.now(UTC) - timedelta(hours=1), api="weather")
    )
    assert spent > 0
    calm = alerts.api_quota({}, store, {"hourly": int(spent / 0.5), "daily": 10_000})
    assert not calm.fired
    tight = alerts.api_quota({}, store, {"hourly": int(spent / 0.85), "daily": 10_000})
    assert tight.fired and tight.figure.startswith("weather hourly past 80%")


@pytest.mark.serial  # holds 80 % of the server's connections
def test_db_pool_fires_on_a_pool_timeout_and_on_server_saturation(
    pg_url, data_dir, monkeypatch
) -> None:
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    store = open_store(pg_url, data_dir)
    assert isinstance(store, PostgresStore)
    run_id = str(uuid.uuid4())

    class Run:  # the two fields of a Dagster run that metrics read
        tags: dict[str, str] = {}

    Run.run_id = run_id
    quiet = alerts.db_pool(store, store.connection_usage())
    assert not quiet.fired, quiet.figure

    # A step whose pool of 1 stays taken: the next request times out.
    small = PostgresStore(pg_url, store._cipher, min_size=1, max_size=1)
    small.take_pool_stats()
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with small._pool.connection():
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    with pytest.raises(PoolTimeout), small._pool.connection(timeout=1.2):
        pass
    release.set()
    holder.join()
    pool = metrics.pool_fields(small.take_pool_stats())
    metrics.record(store, Run, "runs_table", logging.getLogger(__name__), **pool)
    small.close()
    alert = alerts.db_pool(store, None)
    assert alert.fired
    assert alert.metadata["pool_timeouts"] == 1
    assert f"worst: run {run_id} waited" in alert.figure and "with a pool of 1" in alert.figure

    # The server: hold connections until more than 80 % of what it allows are in use.
    usage = store.connection_usage()
    need = int(usage["allowed"] * 0.8) - usage["in_use"] + 2
    conns = [psycopg.connect(pg_url) for _ in range(need)]
    try:
        saturated = alerts.db_pool(store, store.connection_usage(), look_back=timedelta(0))
    finally:
        for conn in conns:
            conn.close()
        # Backends end a moment after their client closes: wait, so that the next test does
        # not find the server still saturated by this one.
        deadline = time.monotonic() + 15
        while store.connection_usage()["in_use"] > usage["in_use"] + 2:
            assert time.monotonic() < deadline, "the test's connections did not end"
            time.sleep(0.05)
    assert saturated.fired
    assert f"of {usage['allowed']} server connections in use" in saturated.figure


def _health_defs(resources: dict[str, object]) -> Definitions:
    return Definitions(
        assets=[sync_health],
        asset_checks=health_checks,
        jobs=[
            define_asset_job(
                "sync_health_checks", selection=AssetSelection.checks_for_assets(SYNC_HEALTH)
            )
        ],
        sensors=[sync_health_sensor],
        resources=resources,
    )


def test_fired_alerts_are_failed_checks_in_dagster(
    pg_url, sandbox, server, tmp_path: Path, data_dir: Path, monkeypatch
) -> None:
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    """Both ways the UI shows them: the checks executed in a run, and the sensor's tick."""
    store = open_store(pg_url, data_dir)
    _sessions(store, pg_url, completed=10, failed=2)
    resources = make_resources(sandbox, server, tmp_path, pg_url, data_dir)
    defs = _health_defs(resources)
    instance = DagsterInstance.ephemeral()
    result = defs.resolve_job_def("sync_health_checks").execute_in_process(instance=instance)
    assert result.success  # a failed check is an alert, not a failed run
    verdicts = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(verdicts) == {
        alerts.FAILURE_RATE,
        alerts.SLOW_SYNCS,
        alerts.API_QUOTA,
        alerts.DB_POOL,
    }
    failure = verdicts[alerts.FAILURE_RATE]
    assert not failure.passed and failure.severity.value == "ERROR"
    assert failure.description.startswith("2 of the last 12 syncs failed (16.7%")
    fired = {n: v.description for n, v in verdicts.items() if not v.passed}
    assert set(fired) == {alerts.FAILURE_RATE}, fired
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [AssetCheckKey(SYNC_HEALTH, alerts.FAILURE_RATE)]
    )[AssetCheckKey(SYNC_HEALTH, alerts.FAILURE_RATE)]
    assert latest.status.value == "FAILED"

    with build_sensor_context(instance=instance, resources=resources, definitions=defs) as context:
        tick = sync_health_sensor(context)
    by_name = {e.check_name: e for e in tick.asset_events}
    assert not by_name[alerts.FAILURE_RATE].passed
    assert by_name[alerts.FAILURE_RATE].metadata["figure"].value.startswith("2 of the last 12")
    assert by_name[alerts.API_QUOTA].passed
