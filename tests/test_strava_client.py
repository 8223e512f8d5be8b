"""The Strava client against the sandbox, over real HTTP on loopback."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sync_assets_sandbox import RateLimits

from sync_assets.core.clients.rate_limit import QUARTER, RateLimitBudget
from sync_assets.core.clients.tokens import StravaTokens
from sync_assets.core.errors import AuthenticationError, ErrorType, RateLimitError, SyncError

from .helpers import LIST_ORDERS

EPOCH = datetime(2009, 1, 1, tzinfo=UTC)


def far_future(sandbox) -> datetime:
    return datetime.fromtimestamp(sandbox.now(), UTC) + timedelta(days=1)


def list_all(client, sandbox, **kw):
    records = []
    for page in client.iter_activity_pages(EPOCH, far_future(sandbox), **kw):
        records.extend(page.records)
    return records


def ids(records) -> list[int]:
    return [r["id"] for r in records]


@pytest.mark.parametrize("list_order", LIST_ORDERS)
@pytest.mark.parametrize("n", [0, 1, 200, 201, 1337, 5000])
def test_fetches_everything_with_the_minimum_number_of_requests(
    n, list_order, sandbox, connect_athlete, make_client, capsys
) -> None:
    user, athlete = connect_athlete(n)
    client = make_client(user)
    got = list_all(client, sandbox)
    truth = ids(sandbox.activities(athlete.athlete_id))
    assert sorted(ids(got)) == sorted(truth) and len(got) == len(truth)  # every one, once
    with capsys.disabled():
        print(
            f"\n{list_order}: {n} activities in {client.stats.list_calls} list requests "
            f"(minimum {n // 200 + 1})"
        )
    assert client.stats.list_calls == n // 200 + 1
    assert client.stats.token_calls == 0  # the stored access token was still fresh
    assert sandbox.request_count(kind="api") == n // 200 + 1
    assert client.stats.retries == 0


def test_expired_token_costs_exactly_one_refresh(
    sandbox, connect_athlete, make_client, token_store
) -> None:
    user, athlete = connect_athlete(450)
    old = token_store.get(user).tokens
    token_store.save_connection(
        user, StravaTokens(access_token="stale", refresh_token=old.refresh_token, expires_at=0)
    )
    client = make_client(user)
    got = list_all(client, sandbox)
    assert len(got) == 450
    assert (client.stats.list_calls, client.stats.token_calls) == (3, 1)
    assert sandbox.request_count(kind="oauth") == 1


@pytest.mark.parametrize("list_order", LIST_ORDERS)
def test_token_expires_mid_sync_then_rotation_is_saved_before_use(
    sandbox, connect_athlete, make_client, token_store, server
) -> None:
    user, athlete = connect_athlete(1000)
    client = make_client(user)
    first_refresh_token = token_store.get(user).tokens.refresh_token.get_secret_value()
    records = []
    for page in client.iter_activity_pages(EPOCH, far_future(sandbox)):
        records.extend(page.records)
        if page.number == 2:
            sandbox.advance_clock(7 * 3600)  # the 6-hour access token is now dead
    assert sorted(ids(records)) == sorted(ids(sandbox.activities(athlete.athlete_id)))
    assert client.stats.token_calls == 1
    assert client.stats.auth_retries == 1  # one 401, answered by one refresh
    stored = token_store.get(user).tokens.refresh_token.get_secret_value()
    assert stored != first_refresh_token  # the rotated token was saved ...
    old = httpx.post(
        server.oauth_url,
        data={
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "grant_type": "refresh_token",
            "refresh_token": first_refresh_token,
        },
    )
    assert old.status_code == 400  # ... and the old one no longer works
    ok = httpx.post(
        server.oauth_url,
        data={
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "grant_type": "refresh_token",
            "refresh_token": stored,
        },
    )
    assert ok.status_code == 200


def test_token_refreshed_ahead_of_expiry_without_a_401(
    sandbox, connect_athlete, make_client
) -> None:
    user, athlete = connect_athlete(800)
    client = make_client(user, refresh_margin_seconds=600)
    records = []
    for page in client.iter_activity_pages(EPOCH, far_future(sandbox)):
        records.extend(page.records)
        if page.number == 1:
            sandbox.advance_clock(6 * 3600 - 300)  # 5 minutes left: inside the margin
            client.athlete()  # learns the server's clock from this response's Date header
    assert len(records) == 800
    assert client.stats.token_calls == 1 and client.stats.auth_retries == 0


def test_revoked_mid_sync_is_a_clear_non_retryable_error(
    sandbox, connect_athlete, make_client, token_store, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    user, athlete = connect_athlete(900)
    sandbox.set_faults(revoke_after_requests={athlete.athlete_id: 2})
    client = make_client(user)
    with pytest.raises(AuthenticationError) as info:
        list_all(client, sandbox)
    err = info.value
    assert err.type == ErrorType.AUTHENTICATION and not err.retryable
    assert user in str(err)
    conn = token_store.list_connections(status=None)[0]
    assert conn.status == "revoked"
    with pytest.raises(AuthenticationError, match="revoked"):
        token_store.get(user)
    secrets = [athlete.access_token, athlete.refresh_token, sandbox.client_secret]
    for text in (str(err), repr(err), caplog.text, err.info().model_dump_json()):
        for secret in secrets:
            assert secret not in text


def test_wrong_client_secret_is_a_configuration_error(
    sandbox, connect_athlete, make_client, token_store
) -> None:
    from pydantic import SecretStr

    user, _ = connect_athlete(10)
    tokens = token_store.get(user).tokens
    token_store.save_connection(user, tokens.model_copy(update={"expires_at": 0}))
    client = make_client(user)
    client._client_secret = SecretStr("wrong")
    with pytest.raises(SyncError) as info:
        list_all(client, sandbox)
    assert info.value.type == ErrorType.CONFIGURATION and not info.value.retryable
    assert token_store.get(user).status == "active"  # the user did nothing wrong


@pytest.mark.parametrize("list_order", LIST_ORDERS)
def test_additions_and_deletions_between_pages_lose_and_duplicate_nothing(
    list_order, sandbox, connect_athlete, make_client
) -> None:
    user, athlete = connect_athlete(1000)
    before = {a["id"]: a for a in sandbox.activities(athlete.athlete_id)}
    sandbox.set_faults(
        mutate_between_pages=[
            {
                "athlete_id": athlete.athlete_id,
                "after_page": 1,
                "add": 3,
                "delete": 3,
                "where": "inside",
            },
            {"athlete_id": athlete.athlete_id, "after_page": 2, "add": 2, "where": "newest"},
        ]
    )
    client = make_client(user)
    got = ids(list_all(client, sandbox))
    after = {a["id"]: a for a in sandbox.activities(athlete.athlete_id)}
    assert len(got) == len(set(got)), "an activity was fetched twice"
    survivors = before.keys() & after.keys()
    assert survivors <= set(got), "an activity present throughout the sync was missed"
    added = after.keys() - before.keys()
    assert len(added) == 5
    # Additions on the side the listing has not reached yet are picked up in this very sync
    # (the newer side when listing oldest first, the older side when newest first); the
    # others are the next sync's (and their push events').
    first_page = [before[i]["start_date"] for i in got[:200]]
    for aid in added:
        start = after[aid]["start_date"]
        ahead = (
            start > max(first_page)
            if list_order == "oldest-first-with-after"
            else (start < min(first_page))
        )
        if ahead:
            assert aid in got


@pytest.mark.parametrize("list_order", LIST_ORDERS)
def test_ties_on_start_second_at_page_boundaries_are_not_lost(
    sandbox, connect_athlete, make_client
) -> None:
    user, athlete = connect_athlete(399)
    acts = sandbox.activities(athlete.athlete_id)
    boundary = datetime.fromisoformat(acts[199]["start_date"])
    for _ in range(3):  # three more activities in the very second that ends page one
        sandbox.add_activity(athlete.athlete_id, start_date=boundary)
    client = make_client(user)
    got = ids(list_all(client, sandbox))
    assert sorted(got) == sorted(ids(sandbox.activities(athlete.athlete_id)))
    assert len(got) == len(set(got)) == 402


def test_waits_for_the_quarter_hour_instead_of_causing_a_429(
    sandbox, connect_athlete, make_client
) -> None:
    user, athlete = connect_athlete(1400)  # 8 list requests
    sandbox.set_limits(RateLimits(read_15min=5, read_daily=1000))
    now = sandbox.now()
    sandbox.set_clock((now // QUARTER + 1) * QUARTER - 2.0)  # 2 s before the window resets
    client = make_client(user, budget=RateLimitBudget(max_wait_seconds=30))
    got = list_all(client, sandbox)
    assert len(got) == 1400
    assert client.stats.list_calls == 8
    assert client.stats.http_429 == 0
    assert client.stats.rate_limit_waits == 1
    assert sandbox.request_count(kind="api") == 8


def test_a_429_caused_by_another_process_waits_for_the_reset(
    sandbox, connect_athlete, make_client
) -> None:
    user, athlete = connect_athlete(500)
    other_user, _ = connect_athlete(5)
    sandbox.set_limits(RateLimits(read_15min=4, read_daily=1000))
    now = sandbox.now()
    sandbox.set_clock((now // QUARTER + 1) * QUARTER - 3.0)
    other = make_client(other_user)  # its own budget: another worker of the same app
    for _ in range(4):
        other.athlete()
    client = make_client(user, budget=RateLimitBudget(max_wait_seconds=30))
    got = list_all(client, sandbox)
    assert len(got) == 500
    assert client.stats.http_429 == 1  # it could not know; it then waited for the window


def test_daily_limit_resets_at_midnight_utc(sandbox, connect_athlete, make_client) -> None:
    user, athlete = connect_athlete(600)
    # Moving the clock to 23:59:58 also expires the 6-hour access token: the first request is
    # a 401 (it counts), then a refresh (not counted), then the first page.
    sandbox.set_limits(RateLimits(read_15min=100, read_daily=3))
    midnight = (sandbox.now() // 86400 + 1) * 86400
    sandbox.set_clock(midnight - 2.0)
    client = make_client(user, budget=RateLimitBudget(max_wait_seconds=30))
    assert len(list_all(client, sandbox)) == 600
    assert client.stats.rate_limit_waits == 1 and client.stats.http_429 == 0


def test_a_long_wait_stops_with_a_retryable_rate_limit_error(
    sandbox, connect_athlete, make_client
) -> None:
    user, athlete = connect_athlete(600)
    sandbox.set_limits(RateLimits(read_15min=2, read_daily=1000))
    now = sandbox.now()
    sandbox.set_clock(now // QUARTER * QUARTER + 60)  # 14 minutes before the reset
    client = make_client(user, budget=RateLimitBudget(max_wait_seconds=5))
    with pytest.raises(RateLimitError) as info:
        list_all(client, sandbox)
    err = info.value
    assert err.retryable and err.type == ErrorType.RATE_LIMIT
    reset = datetime.fromtimestamp((now // QUARTER + 1) * QUARTER, UTC)
    assert reset <= err.retry_after <= reset + timedelta(seconds=5)
    assert sandbox.request_count(kind="api") == 2  # nothing sent past the budget


def test_5xx_storm_is_retried_with_backoff(sandbox, connect_athlete, make_client) -> None:
    user, athlete = connect_athlete(700)
    sandbox.set_faults(error_5xx_next=4)
    client = make_client(user)
    assert ids(list_all(client, sandbox)) == ids(sandbox.activities(athlete.athlete_id))
    assert client.stats.retries == 4
    assert client.stats.errors_by_type == {"SERVER": 4}


def test_endless_5xx_gives_up_with_a_retryable_server_error(
    sandbox, connect_athlete, make_client
) -> None:
    user, _ = connect_athlete(50)
    sandbox.set_faults(error_5xx_next=100)
    client = make_client(user, max_retries=3)
    with pytest.raises(SyncError) as info:
        list_all(client, sandbox)
    assert info.value.type == ErrorType.SERVER and info.value.retryable
    assert sandbox.request_count(kind="api") == 4


def test_dropped_connections_and_truncated_bodies_are_retried(
    sandbox, connect_athlete, make_client
) -> None:
    user, athlete = connect_athlete(650)
    sandbox.set_faults(drop_connection_next=2, truncate_body_next=1)
    client = make_client(user)
    assert ids(list_all(client, sandbox)) == ids(sandbox.activities(athlete.athlete_id))
    assert client.stats.errors_by_type.get("NETWORK") == 3


def test_malformed_page_is_retried_then_classified(sandbox, connect_athlete, make_client) -> None:
    user, athlete = connect_athlete(300)
    sandbox.set_faults(malformed_page_next=1)
    client = make_client(user)
    assert len(list_all(client, sandbox)) == 300
    assert client.stats.errors_by_type == {"INVALID_RESPONSE": 1}
    sandbox.set_faults(malformed_page_next=50)
    client = make_client(user, max_retries=2)
    with pytest.raises(SyncError) as info:
        list_all(client, sandbox)
    assert info.value.type == ErrorType.INVALID_RESPONSE
