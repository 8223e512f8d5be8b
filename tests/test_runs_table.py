"""`runs_table` and `sync_sessions` end to end: sandbox -> Dagster -> SQLite or PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    build_run_status_sensor_context,
    build_sensor_context,
    instance_for_test,
)
from dagster._core.test_utils import create_run_for_test

from sync_assets.core.sessions import InvalidTransition, SessionTracker, SyncState, check_transition
from sync_assets.core.storage import close_stores, open_store
from sync_assets.definitions import STRAVA_SYNC_JOB
from sync_assets.partitions import USERS_PARTITIONS_NAME
from sync_assets.resources import SupabaseResource
from sync_assets.sensors.run_status import (
    reconcile_sync_sessions,
    sync_sessions_on_failure,
)

from .helpers import (
    LIST_ORDERS,
    connect_user,
    make_resources,
    run_metadata,
    sync_range,
    whole_history,
)


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


run_sync = sync_range


def test_whole_history_lands_once_with_a_completed_session(
    backend, sandbox, server, instance, tmp_path
) -> None:
    url, data_dir = backend
    resources = make_resources(sandbox, server, tmp_path, url, data_dir)
    store = open_store(url, data_dir)
    user, athlete = connect_user(store, sandbox, url, 700)
    sandbox.set_faults(malformed_activities=3)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    first, last = whole_history(sandbox, athlete)
    result = run_sync(instance, resources, user, first, last)
    assert result.success
    truth = [a["id"] for a in sandbox.activities(athlete.athlete_id)]
    stored = store.run_ids(user)
    assert len(stored) == len(set(stored)) == 697
    assert set(stored) < set(truth)
    session = store.get_session(result.run_id, user)
    assert session.status == "completed"
    assert (session.activities_fetched, session.activities_stored, session.activities_failed) == (
        700,
        697,
        3,
    )
    assert session.last_successful_page == 4
    assert session.checkpoint_data["cursor"] > 0
    assert session.completed_at is not None
    # The seed's progress columns: the phase, the listing's total, the 3 quarantined.
    assert (session.current_phase, session.total_activities_estimated) == ("completed", 700)
    assert session.error_count == 3 and session.last_activity_at is not None
    assert session.time_range_start is not None and session.time_range_end is not None
    runs_md = run_metadata(result, "runs_table")
    assert runs_md["saved"] == 697 and runs_md["quarantined_invalid"] == 3
    assert run_sessions_of(url, data_dir, user) == {session.id: 697}
    # The same partitions again: nothing new, nothing twice.
    again = run_sync(instance, resources, user, first, last)
    assert again.success
    assert store.run_ids(user) == stored
    md = run_metadata(again, "runs_table")
    assert (md["saved"], md["updated"], md["skipped_unchanged"]) == (0, 0, 697)
    # Unchanged rows were not written: they still name the session that wrote them.
    assert store.get_session(again.run_id, user).id != session.id
    assert run_sessions_of(url, data_dir, user) == {session.id: 697}


def run_sessions_of(url: str | None, data_dir: Path, user: str) -> dict[str, int]:
    """runs.sync_session_id of a user's rows: how many rows each session last wrote."""
    query = "select sync_session_id, count(*) from runs where user_id = {} group by 1"
    if url:
        with psycopg.connect(url) as conn:
            rows = conn.execute(query.format("%s"), (user,)).fetchall()
        return {str(k): n for k, n in rows}
    import sqlite3

    with sqlite3.connect(data_dir / "sync_assets.db") as conn:
        return dict(conn.execute(query.format("?"), (user,)).fetchall())


def test_a_resync_without_webhooks_drops_what_strava_deleted(
    backend, sandbox, server, instance, tmp_path
) -> None:
    url, data_dir = backend
    resources = make_resources(sandbox, server, tmp_path, url, data_dir)
    store = open_store(url, data_dir)
    user, athlete = connect_user(store, sandbox, url, 450)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    first, last = whole_history(sandbox, athlete)
    assert run_sync(instance, resources, user, first, last).success
    history = sandbox.activities(athlete.athlete_id)
    for gone in (history[3], history[200], history[-1]):  # no push subscription: no event
        sandbox.delete_activity(athlete.athlete_id, gone["id"])
    new = sandbox.add_activity(athlete.athlete_id)
    again = run_sync(instance, resources, user, first, last)
    assert again.success
    truth = sorted(a["id"] for a in sandbox.activities(athlete.athlete_id))
    assert sorted(store.run_ids(user)) == truth and new["id"] in truth
    assert run_metadata(again, "raw_strava_activities")["deleted_on_strava"] == 3
    # A sync of one month only touches that month.
    assert run_sync(instance, resources, user, last, last).success
    assert sorted(store.run_ids(user)) == truth


def test_revoked_user_ends_in_a_failed_session_with_a_clear_error(
    backend, sandbox, server, instance, tmp_path, caplog
) -> None:
    url, data_dir = backend
    resources = make_resources(sandbox, server, tmp_path, url, data_dir)
    store = open_store(url, data_dir)
    user, athlete = connect_user(store, sandbox, url, 900)
    sandbox.set_faults(revoke_after_requests={athlete.athlete_id: 2})
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    first, last = whole_history(sandbox, athlete)
    result = run_sync(instance, resources, user, first, last)
    assert not result.success
    session = store.get_session(result.run_id, user)
    assert session.status == "failed"
    assert session.last_error["type"] == "AUTHENTICATION"
    assert session.last_error["retryable"] is False
    assert session.last_successful_page == 2  # the checkpoint of what was fetched before
    text = (
        json.dumps(session.last_error)
        + caplog.text
        + "\n".join(str(e) for e in instance.all_logs(result.run_id))
    )
    for secret in (athlete.access_token, athlete.refresh_token, sandbox.client_secret):
        assert secret not in text
    assert store.list_connections(status="revoked")[0].user_id == user


def test_state_machine_refuses_illegal_moves(tmp_path) -> None:
    store = open_store(None, tmp_path)
    t = SessionTracker(store, run_id="r1", user_id="u1", min_interval=0)
    with pytest.raises(InvalidTransition):
        t.enter(SyncState.STORING)  # initiated -> storing skips fetching
    t.enter(SyncState.FETCHING)
    t.fail(
        __import__("sync_assets.core.errors", fromlist=["ErrorInfo"]).ErrorInfo(
            type="NETWORK", message="boom", retryable=True
        )
    )
    again = SessionTracker(store, run_id="r1", user_id="u1", min_interval=0)
    again.enter(SyncState.FETCHING)  # failed -> retrying -> fetching
    assert again.session.retry_count == 1 and again.state == SyncState.FETCHING
    again.complete()
    assert again.state == SyncState.COMPLETED
    with pytest.raises(InvalidTransition):
        check_transition(SyncState.COMPLETED, SyncState.FETCHING)  # not without retrying
    rerun = SessionTracker(store, run_id="r1", user_id="u1", min_interval=0)
    rerun.enter(SyncState.FETCHING)  # re-executing a completed run: completed -> retrying
    assert rerun.session.retry_count == 2 and rerun.state == SyncState.FETCHING
    close_stores()


def test_progress_writes_are_rate_limited(tmp_path) -> None:
    store = open_store(None, tmp_path)
    t = SessionTracker(store, run_id="r2", user_id="u1", min_interval=3600)
    t.enter(SyncState.FETCHING)
    for i in range(100):
        t.progress(i, 100)
    assert t.session.progress["processed"] == 0  # nothing written within the interval
    t.progress(100, 100, force=True)
    assert t.session.progress["processed"] == 100
    close_stores()


def test_killed_run_ends_failed_through_the_run_status_sensor(
    sandbox, server, instance, tmp_path
) -> None:
    data_dir = tmp_path / "data"
    store = open_store(None, data_dir)
    supabase = SupabaseResource(data_dir=str(data_dir))
    run = create_run_for_test(instance, job_name=STRAVA_SYNC_JOB, status=DagsterRunStatus.STARTED)
    tracker = SessionTracker(store, run_id=run.run_id, user_id="u-killed", min_interval=0)
    tracker.enter(SyncState.FETCHING)  # then the worker is SIGKILLed: no asset code runs again
    instance.report_run_failed(run, message="worker process exited unexpectedly (SIGKILL)")
    failure = next(
        e
        for e in instance.all_logs(run.run_id)
        if e.dagster_event and e.dagster_event.event_type == DagsterEventType.RUN_FAILURE
    )
    with build_run_status_sensor_context(  # the tick's store is closed at its end
        sensor_name="sync_sessions_on_failure",
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run.run_id),
        dagster_event=failure.dagster_event,
        resources={"supabase": supabase},
    ).for_run_failure() as ctx:
        sync_sessions_on_failure(ctx)
        session = store.get_session(run.run_id, "u-killed")
        assert session.status == "failed"
        assert "SIGKILL" in session.last_error["message"]
        sync_sessions_on_failure(ctx)  # the cursor may replay: nothing changes
        assert store.get_session(run.run_id, "u-killed").last_error == session.last_error
    close_stores()


def test_reconcile_sensor_finishes_sessions_whose_run_event_was_missed(instance, tmp_path) -> None:
    data_dir = tmp_path / "data"
    store = open_store(None, data_dir)
    done = create_run_for_test(instance, job_name=STRAVA_SYNC_JOB, status=DagsterRunStatus.SUCCESS)
    dead = create_run_for_test(instance, job_name=STRAVA_SYNC_JOB, status=DagsterRunStatus.CANCELED)
    alive = create_run_for_test(instance, job_name=STRAVA_SYNC_JOB, status=DagsterRunStatus.STARTED)
    for run in (done, dead, alive):
        SessionTracker(store, run_id=run.run_id, user_id="u", min_interval=0).enter(
            SyncState.FETCHING
        )
    with build_sensor_context(  # the tick's store is closed at its end
        instance=instance, resources={"supabase": SupabaseResource(data_dir=str(data_dir))}
    ) as ctx:
        reconcile_sync_sessions(ctx)
    assert store.get_session(done.run_id, "u").status == "completed"
    assert store.get_session(dead.run_id, "u").status == "failed"
    assert "CANCELED" in store.get_session(dead.run_id, "u").last_error["message"]
    assert store.get_session(alive.run_id, "u").status == "fetching_activities"
    close_stores()


def test_auth_uid_reads_the_jwt_claims_as_supabase_does(pg_url) -> None:
    uid = str(uuid.uuid4())
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("select auth.uid()").fetchone()[0] is None
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": uid}),)
        )
        assert str(conn.execute("select auth.uid()").fetchone()[0]) == uid


# Each order once, each backend with the default order and one more (four runs, not six).
@pytest.mark.parametrize(
    ("backend", "list_order"),
    [
        ("sqlite", LIST_ORDERS[0]),
        ("postgres", LIST_ORDERS[0]),
        ("sqlite", LIST_ORDERS[1]),
        ("postgres", LIST_ORDERS[2]),
    ],
    indirect=["backend"],
)
def test_relaunch_resumes_from_the_checkpoint_without_refetching(
    backend, list_order, sandbox, server, instance, tmp_path
) -> None:
    url, data_dir = backend
    resources = make_resources(
        sandbox,
        server,
        tmp_path,
        url,
        data_dir,
        max_retries=1,
        step_retries=1,
        step_retry_seconds=0.1,
    )
    store = open_store(url, data_dir)
    # 6 list pages for the whole history (two years of it: fewer months to materialize)
    user, athlete = connect_user(store, sandbox, url, 1000, years=2.0)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    first, last = whole_history(sandbox, athlete)
    sandbox.set_faults(outage_after_requests=3)  # Strava goes down after the third page
    failed = run_sync(instance, resources, user, first, last)
    assert not failed.success
    session = store.get_session(failed.run_id, user)
    assert session.status == "failed" and session.last_error["type"] == "SERVER"
    assert session.last_successful_page == 3
    listing = session.checkpoint_data["listing"]
    descending = list_order != "oldest-first-with-after"
    assert listing["moving_bound"] == ("before" if descending else "after")
    assert listing["order"] == ("descending" if descending else "ascending")
    assert session.checkpoint_data["cursor"] == listing[listing["moving_bound"]]
    sandbox.clear_faults()
    sandbox.clear_requests()
    resumed = run_sync(instance, resources, user, first, last)
    assert resumed.success
    lists = sandbox.request_count(kind="api", path_prefix="/api/v3/athlete/activities")
    assert lists == 3  # pages 4, 5 and 6: nothing fetched twice
    md = run_metadata(resumed, "raw_strava_activities")
    assert md["resumed_from_checkpoint"] == session.activities_fetched > 590
    truth = [a["id"] for a in sandbox.activities(athlete.athlete_id)]
    assert store.run_ids(user) == truth  # every activity, once
    assert store.staged_pages(user, "any") == []
    done = store.get_session(resumed.run_id, user)
    assert done.status == "completed"
    assert done.checkpoint_data["resumed_activities"] == session.activities_fetched
