"""Listings whatever order Strava answers in, the safety net after the store, granted scopes.

Strava documents no order for `GET /athlete/activities`. A sync must store every activity in
each order the real service could use, fail loudly (keeping what it fetched) when a page's
order cannot be read, and never end `completed` with activities missing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from dagster import DagsterInstance, instance_for_test

from sync_assets.apps import cli
from sync_assets.core.errors import ErrorType, SyncError
from sync_assets.core.storage import close_stores, open_store
from sync_assets.partitions import USERS_PARTITIONS_NAME, SyncSpan

from .helpers import (
    connect_user,
    make_resources,
    run_metadata,
    sync_range,
    whole_history,
)

LISTS = "/api/v3/athlete/activities"


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


def lists(sandbox) -> int:
    return sandbox.request_count(kind="api", path_prefix=LISTS)


def staged(store, user: str, first: str, last: str) -> list:
    """The staged pages of the listing of `first`..`last` (a span is named by its window)."""
    return store.staged_pages(user, SyncSpan(user, (first, last)).id)


@pytest.mark.parametrize("list_order", ["newest-first-when-bounded"])
def test_a_whole_history_of_1336_activities_listed_newest_first_is_stored_whole(
    list_order, sandbox, server, instance, tmp_path, capsys
) -> None:
    """The reported case: 1,336 activities, newest first with both bounds, once stored 199
    and ended `completed`. Now all of them, with the minimum of list requests (the client
    tests count requests in every order)."""
    data_dir = tmp_path / "data"
    resources = make_resources(sandbox, server, tmp_path, None, data_dir)
    store = open_store(None, data_dir)
    user, athlete = connect_user(store, sandbox, None, 1336, years=2.0)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    first, last = whole_history(sandbox, athlete)
    result = sync_range(instance, resources, user, first, last)
    assert result.success
    truth = sorted(a["id"] for a in sandbox.activities(athlete.athlete_id))
    assert sorted(store.run_ids(user)) == truth
    md = run_metadata(result, "raw_strava_activities")
    assert md["list_requests"] == md["list_requests_minimum"] == 1336 // 200 + 1 == lists(sandbox)
    session = store.get_session(result.run_id, user)
    assert session.status == "completed" and session.activities_stored == 1336
    with capsys.disabled():
        print(f"\n{list_order}: 1336 of 1336 stored with {lists(sandbox)} list requests")
    close_stores()


# "flipping" alternates per request: the first attempt keeps page 1 and fails on page 2; its
# step retry resumes (page 2 comes oldest first again), keeps it and fails on page 3.
@pytest.mark.parametrize(
    ("backend", "bad_order", "kept_pages", "what"),
    [
        ("sqlite", "unordered", 0, "in no order"),
        ("postgres", "flipping", 2, "changed order within one listing"),
    ],
    indirect=["backend"],
)
def test_a_listing_in_no_readable_order_fails_loudly_and_keeps_what_it_fetched(
    bad_order, kept_pages, what, backend, sandbox, server, instance, tmp_path
) -> None:
    url, data_dir = backend
    resources = make_resources(
        sandbox, server, tmp_path, url, data_dir, step_retries=1, step_retry_seconds=0.05
    )
    store = open_store(url, data_dir)
    user, athlete = connect_user(store, sandbox, url, 1000, years=2.0)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    first, last = whole_history(sandbox, athlete)
    sandbox.set_list_order(bad_order)
    failed = sync_range(instance, resources, user, first, last)
    assert not failed.success
    session = store.get_session(failed.run_id, user)
    assert session.status == "failed"  # never `completed` with fewer activities
    error = session.last_error
    assert error["type"] == ErrorType.INVALID_RESPONSE.value and error["retryable"] is True
    assert what in error["message"] and "start dates" in error["message"]
    assert session.last_successful_page == kept_pages
    assert len(staged(store, user, first, last)) == kept_pages  # what was fetched stays
    assert store.run_ids(user) == []

    # Strava answers in order again: the next sync resumes from the staged page(s).
    sandbox.set_list_order("oldest-first-with-after")
    sandbox.clear_requests()
    again = sync_range(instance, resources, user, first, last)
    assert again.success
    truth = sorted(a["id"] for a in sandbox.activities(athlete.athlete_id))
    assert sorted(store.run_ids(user)) == truth
    resumed = run_metadata(again, "raw_strava_activities")["resumed_from_checkpoint"]
    assert (
        resumed == session.activities_fetched == (200 + 199 * (kept_pages - 1)) * (kept_pages > 0)
    )
    assert lists(sandbox) == 1000 // 200 + 1 - kept_pages  # nothing fetched twice


def test_rows_lost_by_the_database_fail_the_sync_and_keep_the_staged_pages(
    pg_url, sandbox, server, instance, tmp_path, monkeypatch
) -> None:
    """The safety net: a database that silently drops a row (here a real trigger that skips
    one insert) makes the sync fail and name the activity, never `completed`."""
    from cryptography.fernet import Fernet

    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    data_dir = tmp_path / "data"
    resources = make_resources(sandbox, server, tmp_path, pg_url, data_dir)
    store = open_store(pg_url, data_dir)
    sandbox.set_list_order("newest-first-always")
    user, athlete = connect_user(store, sandbox, pg_url, 450)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    first, last = whole_history(sandbox, athlete)
    lost = sandbox.activities(athlete.athlete_id)[123]["id"]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "create function public.lose_one() returns trigger language plpgsql as $$ begin "
            f"if new.strava_id = {lost} then return null; end if; return new; end $$"
        )
        conn.execute(
            "create trigger lose_one before insert on public.runs "
            "for each row execute function public.lose_one()"
        )
    failed = sync_range(instance, resources, user, first, last)
    assert not failed.success
    session = store.get_session(failed.run_id, user)
    assert session.status == "failed"
    assert session.last_error["type"] == "DATABASE"
    assert str(lost) in session.last_error["message"]
    assert session.last_error["details"]["missing_ids"] == [lost]
    assert len(staged(store, user, first, last)) == 3  # the listing is kept for the retry
    assert lost not in store.run_ids(user)

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("drop trigger lose_one on public.runs")
    again = sync_range(instance, resources, user, first, last)
    assert again.success
    truth = sorted(a["id"] for a in sandbox.activities(athlete.athlete_id))
    assert sorted(store.run_ids(user)) == truth
    close_stores()


# -- granted scopes ---------------------------------------------------------------------------
def sync_new_athlete(backend, sandbox, server, instance, tmp_path, n: int, **athlete):
    """A new athlete (sandbox options `athlete`) connected and synced whole, through Dagster:
    (store, user, athlete handle, run result)."""
    url, data_dir = backend
    resources = make_resources(sandbox, server, tmp_path, url, data_dir)
    store = open_store(url, data_dir)
    user, handle = connect_user(store, sandbox, url, n, **athlete)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    first, last = whole_history(sandbox, handle)
    return store, user, handle, sync_range(instance, resources, user, first, last)


def test_connect_records_the_scopes_of_the_redirect(sandbox, server, tmp_path, monkeypatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("SYNC_ASSETS_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("STRAVA_CLIENT_ID", sandbox.client_id)
    monkeypatch.setenv("STRAVA_CLIENT_SECRET", sandbox.client_secret)
    monkeypatch.setenv("STRAVA_API_URL", server.api_url)
    monkeypatch.setenv("STRAVA_OAUTH_URL", server.oauth_url)
    athlete = sandbox.add_athlete(n_activities=3, scopes="read,activity:read")
    user = str(uuid.uuid4())
    code = sandbox.authorize(athlete.athlete_id)
    assert (
        cli.main(["connect", "--user", user, "--code", code, "--scope", "read,activity:read"]) == 0
    )
    store = open_store(None, home)
    assert store.get(user).scopes == "activity:read,read"

    # A grant that cannot list activities is refused before anything is stored.
    other = str(uuid.uuid4())
    code = sandbox.authorize(athlete.athlete_id, scopes="read")
    assert cli.main(["connect", "--user", other, "--code", code, "--scope", "read"]) == 2
    assert other not in {c.user_id for c in store.list_connections(status=None)}
    close_stores()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_without_read_all_private_activities_are_left_out_and_said_so(
    backend, sandbox, server, instance, tmp_path
) -> None:
    store, user, athlete, result = sync_new_athlete(
        backend, sandbox, server, instance, tmp_path, 500, scopes="read,activity:read"
    )
    assert result.success
    history = sandbox.activities(athlete.athlete_id)
    public = sorted(a["id"] for a in history if not a.get("private"))
    assert len(public) < len(history)
    assert sorted(store.run_ids(user)) == public
    session = store.get_session(result.run_id, user)
    assert session.status == "completed"
    (note,) = session.progress["notes"]
    assert "private activities cannot be seen" in note and "activity:read_all" in note
    assert (
        "private activities cannot be seen"
        in run_metadata(result, "raw_strava_activities")["notes"]
    )


def test_read_without_activity_read_is_a_clear_permission_error_before_any_request(
    backend, sandbox, server, instance, tmp_path
) -> None:
    store, user, _, result = sync_new_athlete(
        backend, sandbox, server, instance, tmp_path, 50, scopes="read"
    )
    assert not result.success
    session = store.get_session(result.run_id, user)
    assert session.status == "failed"
    assert session.last_error["type"] == "PERMISSION_DENIED"
    assert session.last_error["retryable"] is False
    assert "activity:read" in session.last_error["message"]
    assert sandbox.request_count(kind="api") == 0  # refused before spending a request


def test_a_permission_error_from_strava_itself_is_permission_denied(
    sandbox, connect_athlete, make_client, token_store
) -> None:
    """Scopes not recorded (a connection made without --scope): Strava's own 401 says it."""
    from datetime import UTC, datetime, timedelta

    user, athlete = connect_athlete(5, scopes="read")
    unknown = str(uuid.uuid4())
    tokens = token_store.get(user).tokens
    token_store.save_connection(unknown, tokens, athlete_id=athlete.athlete_id)
    assert token_store.get(unknown).scopes is None
    client = make_client(unknown)
    assert client.scope_notes() == []  # nothing known, nothing claimed
    with pytest.raises(SyncError) as info:
        list(
            client.iter_activity_pages(
                datetime(2009, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1)
            )
        )
    assert info.value.type == ErrorType.PERMISSION_DENIED and not info.value.retryable
    assert sandbox.request_count(kind="api") == 1
