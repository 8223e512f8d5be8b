"""The Strava sandbox as a client meets it: real HTTP over loopback with httpx, no project code."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.client import HTTPConnection
from typing import Any

import httpx
import pytest
from sync_assets_sandbox import (
    Faults,
    RateLimits,
    SandboxServer,
    StravaSandbox,
    generate_activities,
    serve,
)

from .helpers import quarter_not_midnight

QUARTER = 900
DAY = 86_400
RATE_EXCEEDED = {
    "message": "Rate Limit Exceeded",
    "errors": [{"resource": "Application", "field": "rate limit", "code": "exceeded"}],
}
BAD_TOKEN = {
    "message": "Authorization Error",
    "errors": [{"resource": "Athlete", "field": "access_token", "code": "invalid"}],
}
JSON_TYPE = "application/json; charset=utf-8"
ACTIVITIES = "/api/v3/athlete/activities"


@pytest.fixture
def sbx() -> StravaSandbox:
    return StravaSandbox(seed=7)


@pytest.fixture
def srv(sbx: StravaSandbox) -> Iterator[SandboxServer]:
    with SandboxServer(sbx) as server:
        yield server


@pytest.fixture
def http(srv: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=5) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def oauth(http: httpx.Client, sbx: StravaSandbox, **form: str) -> httpx.Response:
    return http.post(
        "/oauth/token",
        data={"client_id": sbx.client_id, "client_secret": sbx.client_secret, **form},
    )


def refresh(http: httpx.Client, sbx: StravaSandbox, token: str) -> httpx.Response:
    return oauth(http, sbx, grant_type="refresh_token", refresh_token=token)


def epoch(activity: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(activity["start_date"]).timestamp())


def ids(activities: list[dict[str, Any]]) -> list[int]:
    return [a["id"] for a in activities]


def list_all(http: httpx.Client, token: str, **params: Any) -> list[dict[str, Any]]:
    """Offset paging, as a naive client does it."""
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        resp = http.get(
            ACTIVITIES, headers=bearer(token), params={"per_page": 200, "page": page, **params}
        )
        assert resp.status_code == 200, resp.text
        out += resp.json()
        if len(resp.json()) < params.get("per_page", 200):
            return out
        page += 1


# -- OAuth ---------------------------------------------------------------------------------------
def test_code_exchange_answers_tokens_and_the_athlete_once(
    sbx: StravaSandbox, http: httpx.Client
) -> None:
    athlete = sbx.add_athlete(5)
    resp = oauth(http, sbx, grant_type="authorization_code", code=athlete.authorization_code)
    assert resp.status_code == 200 and resp.headers["content-type"] == JSON_TYPE
    body = resp.json()
    assert list(body) == [
        "token_type", "expires_at", "expires_in", "refresh_token", "access_token", "athlete"
    ]  # fmt: skip
    assert body["token_type"] == "Bearer" and len(body["access_token"]) == 40
    assert body["expires_at"] == pytest.approx(sbx.now() + 21_600, abs=2)
    assert body["expires_in"] == pytest.approx(21_600, abs=2)
    summary = body["athlete"]
    assert summary["id"] == athlete.athlete_id and summary["resource_state"] == 2
    assert {"username", "firstname", "lastname", "city", "country", "sex", "premium"} <= set(
        summary
    )
    assert "x-ratelimit-usage" not in resp.headers  # the token endpoint is not metered
    again = oauth(http, sbx, grant_type="authorization_code", code=athlete.authorization_code)
    assert again.status_code == 400
    assert again.json() == {
        "message": "Bad Request",
        "errors": [{"resource": "AuthorizationCode", "field": "code", "code": "invalid"}],
    }
    missing = oauth(http, sbx, grant_type="authorization_code")
    assert missing.status_code == 400 and missing.json()["errors"][0]["code"] == "missing"
    me = http.get("/api/v3/athlete", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == athlete.athlete_id


def test_refresh_rotates_and_the_old_refresh_token_dies(
    sbx: StravaSandbox, http: httpx.Client
) -> None:
    athlete = sbx.add_athlete(5)
    first = refresh(http, sbx, athlete.refresh_token)
    assert first.status_code == 200
    body = first.json()
    assert list(body) == ["token_type", "access_token", "expires_at", "expires_in", "refresh_token"]
    assert body["refresh_token"] != athlete.refresh_token
    assert body["access_token"] != athlete.access_token
    stale = refresh(http, sbx, athlete.refresh_token)
    assert stale.status_code == 400
    assert stale.json() == {
        "message": "Bad Request",
        "errors": [{"resource": "RefreshToken", "field": "refresh_token", "code": "invalid"}],
    }
    assert refresh(http, sbx, body["refresh_token"]).status_code == 200
    assert http.get("/api/v3/athlete", headers=bearer(body["access_token"])).status_code == 200


def test_without_rotation_the_refresh_token_stays() -> None:
    sbx = StravaSandbox(seed=1, rotate_refresh_tokens=False, token_lifetime_seconds=120)
    with SandboxServer(sbx) as other, httpx.Client(base_url=other.url, timeout=5) as client:
        athlete = sbx.add_athlete(3)
        for _ in range(2):
            body = refresh(client, sbx, athlete.refresh_token).json()
            assert body["refresh_token"] == athlete.refresh_token
            assert body["expires_in"] == pytest.approx(120, abs=2)


def test_oauth_client_errors_and_parameter_encodings(
    sbx: StravaSandbox, http: httpx.Client
) -> None:
    athlete = sbx.add_athlete(3)
    form = {"grant_type": "refresh_token", "refresh_token": athlete.refresh_token}
    wrong = http.post(
        "/oauth/token", data={**form, "client_id": sbx.client_id, "client_secret": "x"}
    )
    assert wrong.status_code == 401
    assert wrong.json() == {
        "message": "Bad Request",
        "errors": [{"resource": "Application", "field": "client_secret", "code": "invalid"}],
    }
    unknown = http.post("/oauth/token", data={**form, "client_id": "nope", "client_secret": "x"})
    assert unknown.status_code == 401 and unknown.json()["errors"][0]["field"] == "client_id"
    missing = http.post("/oauth/token", data={**form, "client_id": sbx.client_id})
    assert missing.status_code == 400
    assert missing.json()["errors"][0] == {
        "resource": "Application",
        "field": "client_secret",
        "code": "missing",
    }
    bad_grant = oauth(http, sbx, grant_type="password")
    assert bad_grant.status_code == 400 and bad_grant.json()["errors"][0]["field"] == "grant_type"
    creds = {"client_id": sbx.client_id, "client_secret": sbx.client_secret}
    as_json = http.post("/oauth/token", json={**form, **creds})
    assert as_json.status_code == 200
    as_query = http.post(
        "/oauth/token", params={**creds, **form, "refresh_token": as_json.json()["refresh_token"]}
    )
    assert as_query.status_code == 200


def test_access_tokens_expire_on_the_sandbox_clock(sbx: StravaSandbox, http: httpx.Client) -> None:
    athlete = sbx.add_athlete(3)
    h = bearer(athlete.access_token)
    assert http.get("/api/v3/athlete", headers=h).status_code == 200
    sbx.advance_clock(6 * 3600 - 30)
    assert http.get("/api/v3/athlete", headers=h).status_code == 200
    sbx.advance_clock(31)
    resp = http.get("/api/v3/athlete", headers=h)
    assert resp.status_code == 401 and resp.json() == BAD_TOKEN
    assert "x-ratelimit-usage" in resp.headers  # a 401 is metered too
    served = datetime.strptime(resp.headers["date"], "%a, %d %b %Y %H:%M:%S GMT")
    assert abs(served.replace(tzinfo=UTC).timestamp() - sbx.now()) < 2
    assert abs(sbx.now() - time.time() - 6 * 3600 - 1) < 2
    assert http.get("/api/v3/athlete").json() == BAD_TOKEN  # no token at all


def test_revocation_kills_every_token_until_the_athlete_authorizes_again(
    sbx: StravaSandbox, http: httpx.Client
) -> None:
    athlete = sbx.add_athlete(3)
    sbx.revoke(athlete.athlete_id)
    assert http.get("/api/v3/athlete", headers=bearer(athlete.access_token)).status_code == 401
    assert refresh(http, sbx, athlete.refresh_token).status_code == 400
    code = oauth(http, sbx, grant_type="authorization_code", code=athlete.authorization_code)
    assert code.status_code == 400
    fresh = sbx.authorize(athlete.athlete_id)
    granted = oauth(http, sbx, grant_type="authorization_code", code=fresh).json()
    h = bearer(granted["access_token"])
    assert http.get("/api/v3/athlete", headers=h).status_code == 200
    gone = http.post("/oauth/deauthorize", data={"access_token": granted["access_token"]})
    assert gone.status_code == 200
    assert http.get("/api/v3/athlete", headers=h).status_code == 401


# -- listing -------------------------------------------------------------------------------------
def test_listing_order_and_strict_bounds(sbx: StravaSandbox, http: httpx.Client) -> None:
    athlete = sbx.add_athlete(450)
    truth = sbx.activities(athlete.athlete_id)
    assert truth == sorted(truth, key=lambda a: (a["start_date"], a["id"]))
    h = bearer(athlete.access_token)
    newest = http.get(ACTIVITIES, headers=h)
    assert newest.headers["content-type"] == JSON_TYPE
    assert ids(newest.json()) == ids(truth[::-1][:30])  # newest first, 30 by default
    lo, hi = epoch(truth[100]), epoch(truth[300])
    window = list_all(http, athlete.access_token, after=lo, before=hi)
    assert ids(window) == [a["id"] for a in truth if lo < epoch(a) < hi]  # oldest first, strict
    assert truth[100]["id"] not in ids(window) and truth[300]["id"] not in ids(window)
    before_only = list_all(http, athlete.access_token, before=hi)
    assert ids(before_only) == [a["id"] for a in truth if epoch(a) < hi][::-1]
    assert ids(list_all(http, athlete.access_token, after=0)) == ids(truth)


def test_activities_sharing_a_start_second_are_ordered_by_id(
    sbx: StravaSandbox, http: httpx.Client
) -> None:
    athlete = sbx.add_athlete(20)
    base = sbx.activities(athlete.athlete_id)[10]
    twin = sbx.add_activity(athlete.athlete_id, {**base, "id": None, "name": "Second device"})
    assert twin["id"] > base["id"] and twin["start_date"] == base["start_date"]
    h = bearer(athlete.access_token)
    asc = http.get(ACTIVITIES, headers=h, params={"after": epoch(base) - 1, "per_page": 2}).json()
    assert ids(asc) == [base["id"], twin["id"]]
    desc = http.get(ACTIVITIES, headers=h, params={"before": epoch(base) + 1, "per_page": 2}).json()
    assert ids(desc) == [twin["id"], base["id"]]


def test_per_page_default_clamp_validation_and_paging(
    sbx: StravaSandbox, http: httpx.Client
) -> None:
    athlete = sbx.add_athlete(430)
    truth = ids(sbx.activities(athlete.athlete_id))
    h = bearer(athlete.access_token)
    assert len(http.get(ACTIVITIES, headers=h, params={"per_page": 500}).json()) == 200
    assert len(http.get(ACTIVITIES, headers=h, params={"per_page": ""}).json()) == 30
    for name, bad in [("per_page", "0"), ("per_page", "-5"), ("per_page", "x"), ("page", "0")]:
        resp = http.get(ACTIVITIES, headers=h, params={name: bad})
        assert resp.status_code == 400, (name, bad)
        assert resp.json()["message"] == "Bad Request"
        assert resp.json()["errors"][0]["field"] == name
    assert http.get(ACTIVITIES, headers=h, params={"after": "1.5"}).status_code == 400
    pages = [
        http.get(ACTIVITIES, headers=h, params={"after": 0, "per_page": 100, "page": p}).json()
        for p in range(1, 7)
    ]
    assert [len(p) for p in pages] == [100, 100, 100, 100, 30, 0]
    assert [a["id"] for p in pages for a in p] == truth


def test_summary_activities_look_like_stravas(sbx: StravaSandbox, http: httpx.Client) -> None:
    athlete = sbx.add_athlete(300)
    page = http.get(
        ACTIVITIES, headers=bearer(athlete.access_token), params={"per_page": 200}
    ).json()
    assert page == sbx.activities(athlete.athlete_id)[::-1][:200]
    for a in page:
        assert a["resource_state"] == 2 and a["athlete"] == {
            "id": athlete.athlete_id,
            "resource_state": 1,
        }
        assert isinstance(a["id"], int) and a["id"] > 2**32
        # JSON numbers: Strava's own examples send whole floats as integers (`"max_speed": 11`),
        # and activities without a distance (yoga, strength) leave it out.
        assert isinstance(a.get("distance", 0), int | float) and isinstance(a["moving_time"], int)
        assert isinstance(a["total_elevation_gain"], int | float)
        assert isinstance(a["utc_offset"], int | float)
        assert a["start_date"].endswith("Z") and a["start_date_local"].endswith("Z")
        assert a["map"]["id"] == f"a{a['id']}" and a["map"]["resource_state"] == 2
        assert a["private"] == (a["visibility"] == "only_me")
        assert ("average_heartrate" in a) == a["has_heartrate"]


def test_private_activities_need_read_all_and_lists_need_an_activity_scope(
    sbx: StravaSandbox, http: httpx.Client
) -> None:
    athlete = sbx.add_athlete(400, scopes="read,activity:read")
    truth = sbx.activities(athlete.athlete_id)
    private = {a["id"] for a in truth if a["private"]}
    assert private
    got = list_all(http, athlete.access_token, after=0)
    assert set(ids(got)) == {a["id"] for a in truth} - private
    reader = sbx.add_athlete(5, scopes="read")
    h = bearer(reader.access_token)
    resp = http.get(ACTIVITIES, headers=h)
    assert resp.status_code == 401
    assert resp.json()["errors"][0]["field"] == "activity:read_permission"
    assert resp.json()["errors"][0]["code"] == "missing"
    assert http.get("/api/v3/athlete", headers=h).json()["resource_state"] == 2
    full = sbx.add_athlete(50, scopes="read,profile:read_all,activity:read")
    me = http.get("/api/v3/athlete", headers=bearer(full.access_token)).json()
    assert me["resource_state"] == 3 and me["shoes"] and me["bikes"]
    unknown = http.get("/api/v3/segments/1", headers=h)
    assert unknown.status_code == 404
    assert unknown.json() == {
        "message": "Record Not Found",
        "errors": [{"resource": "resource", "field": "path", "code": "invalid"}],
    }


# -- rate limits ---------------------------------------------------------------------------------
def test_every_api_answer_is_metered_and_reports_usage(
    sbx: StravaSandbox, http: httpx.Client
) -> None:
    athlete = sbx.add_athlete(3)
    h = bearer(athlete.access_token)
    ok = http.get("/api/v3/athlete", headers=h)
    assert ok.headers["x-ratelimit-limit"] == "200,2000"
    assert ok.headers["x-readratelimit-limit"] == "100,1000"
    assert ok.headers["x-ratelimit-usage"] == "1,1" and ok.headers["x-readratelimit-usage"] == "1,1"
    assert http.get("/api/v3/nothing", headers=h).headers["x-ratelimit-usage"] == "2,2"
    refresh(http, sbx, athlete.refresh_token)  # not metered
    http.get("/_sandbox/usage")  # not metered either
    post = http.post(ACTIVITIES, headers=h)  # not a read: only the overall limit counts it
    assert post.headers["x-ratelimit-usage"] == "3,3"
    assert post.headers["x-readratelimit-usage"] == "2,2"
    usage = sbx.usage()
    assert (usage["usage_15min"], usage["read_usage_15min"]) == (3, 2)
    assert usage["window_15min_resets_at"] % QUARTER == 0
    assert sbx.request_count(kind="api") == 3 and sbx.request_count(kind="oauth") == 1
    assert sbx.request_count(kind="api", path_prefix=ACTIVITIES) == 1


def test_429_over_the_read_limit_and_the_quarter_hour_reset(
    sbx: StravaSandbox, http: httpx.Client
) -> None:
    athlete = sbx.add_athlete(3)
    sbx.set_limits(RateLimits(overall_15min=10, overall_daily=50, read_15min=3, read_daily=40))
    sbx.set_clock(quarter_not_midnight(sbx.now()) - 5)  # 5 s before :00/:15/:30/:45
    h = bearer(athlete.access_token)
    answers = [http.get("/api/v3/athlete", headers=h) for _ in range(5)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
    assert answers[3].json() == RATE_EXCEEDED
    assert answers[4].headers["x-ratelimit-limit"] == "10,50"
    assert answers[4].headers["x-readratelimit-usage"] == "5,5"  # refused requests count too
    writes = [http.post("/api/v3/athlete", headers=h).status_code for _ in range(6)]
    assert writes == [404] * 5 + [429]  # writes are under the overall limit only
    sbx.advance_clock(6)  # the next quarter hour
    ok = http.get("/api/v3/athlete", headers=h)
    assert ok.status_code == 200
    assert ok.headers["x-readratelimit-usage"] == "1,6"  # the daily count carries on
    assert ok.headers["x-ratelimit-usage"] == "1,12"


def test_the_daily_window_resets_at_midnight_utc(sbx: StravaSandbox, http: httpx.Client) -> None:
    athlete = sbx.add_athlete(3)
    sbx.set_limits(RateLimits(read_15min=100, read_daily=2))
    midnight = (sbx.now() // DAY + 1) * DAY
    sbx.set_clock(midnight - 20 * 60)  # not on a quarter boundary's eve: only the day matters
    token = refresh(http, sbx, athlete.refresh_token).json()["access_token"]
    h = bearer(token)
    assert [http.get("/api/v3/athlete", headers=h).status_code for _ in range(3)] == [200, 200, 429]
    sbx.advance_clock(15 * 60)  # a new quarter hour, the same day: still refused
    assert http.get("/api/v3/athlete", headers=h).status_code == 429
    sbx.advance_clock(5 * 60 + 1)
    resp = http.get("/api/v3/athlete", headers=h)
    assert resp.status_code == 200 and resp.headers["x-readratelimit-usage"] == "1,1"
    sbx.reset_usage()
    assert sbx.usage()["read_usage_daily"] == 0


# -- faults --------------------------------------------------------------------------------------
def test_5xx_faults_cycle_and_gateway_pages_are_html(
    sbx: StravaSandbox, http: httpx.Client
) -> None:
    athlete = sbx.add_athlete(5)
    h = bearer(athlete.access_token)
    sbx.set_faults(error_5xx_next=3)
    answers = [http.get("/api/v3/athlete", headers=h) for _ in range(4)]
    assert [r.status_code for r in answers] == [500, 502, 503, 200]
    assert answers[0].json()["message"] == "Internal Server Error"
    assert "x-ratelimit-usage" in answers[0].headers  # the API produced it
    for gateway in answers[1:3]:
        assert gateway.headers["content-type"] == "text/html"
        assert gateway.text.startswith("<html>") and "x-ratelimit-usage" not in gateway.headers
    assert sbx.usage()["usage_15min"] == 2  # gateway errors never reached the API
    assert sbx.faults.error_5xx_next == 0


def test_rate_faults_are_deterministic_per_seed() -> None:
    def statuses(seed: int) -> list[int]:
        sandbox = StravaSandbox(seed=seed)
        athlete = sandbox.add_athlete(3)
        sandbox.set_faults(error_5xx_rate=0.3)
        with SandboxServer(sandbox) as server, httpx.Client(base_url=server.url) as client:
            h = bearer(athlete.access_token)
            return [client.get("/api/v3/athlete", headers=h).status_code for _ in range(30)]

    first = statuses(11)
    assert first == statuses(11)
    assert 0 < sum(s >= 500 for s in first) < 30


def test_dropped_connections_and_truncated_bodies(sbx: StravaSandbox, http: httpx.Client) -> None:
    athlete = sbx.add_athlete(50)
    h = bearer(athlete.access_token)
    sbx.set_faults(drop_connection_next=1)
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/api/v3/athlete", headers=h)
    assert sbx.requests[-1]["fault"] == "drop" and sbx.usage()["usage_15min"] == 0
    sbx.set_faults(truncate_body_next=1)
    with httpx.stream("GET", f"{http.base_url}{ACTIVITIES}", headers=h) as resp:
        assert resp.status_code == 200
        expected = int(resp.headers["content-length"])
        received = bytearray()
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in resp.iter_raw():
                received += chunk
    assert len(received) == expected // 2
    assert http.get(ACTIVITIES, headers=h).status_code == 200  # then all is well again


def test_malformed_pages_and_activities(sbx: StravaSandbox, http: httpx.Client) -> None:
    athlete = sbx.add_athlete(250)
    h = bearer(athlete.access_token)
    sbx.set_faults(malformed_page_next=1)
    broken = http.get(ACTIVITIES, headers=h)
    assert broken.status_code == 200 and broken.headers["content-type"] == JSON_TYPE
    with pytest.raises(ValueError):
        broken.json()
    assert isinstance(http.get(ACTIVITIES, headers=h).json(), list)

    sbx.set_faults(malformed_activities=14)
    truth = {a["id"]: a for a in sbx.activities(athlete.athlete_id)}
    got = list_all(http, athlete.access_token, after=0)
    assert got == list_all(http, athlete.access_token, after=0)  # the same damage every time
    damaged = [a for a in got if a.get("id") not in truth or a != truth[a["id"]]]
    assert len(damaged) == 14 and len(got) == 250
    assert len(sbx.malformed_activity_ids(athlete.athlete_id)) == 14

    def invalid(a: dict[str, Any]) -> bool:
        return (
            not isinstance(a.get("id"), int)
            or not isinstance(a.get("start_date"), str)
            or not a["start_date"][:4].isdigit()
            or a["start_date"].startswith("0000")
            or not isinstance(a.get("distance", 0), int | float)
            or a.get("distance", 0) < 0
            or not isinstance(a.get("moving_time"), int)
            or any(abs(x) > 180 for x in a.get("start_latlng") or [])
        )

    assert all(invalid(a) for a in damaged)
    assert not any(invalid(a) for a in got if a not in damaged)
    sbx.set_faults(malformed_activities=0, malformed_activity_rate=0.1)
    by_rate = sbx.malformed_activity_ids(athlete.athlete_id)
    assert 5 < len(by_rate) < 50
    assert by_rate == sbx.malformed_activity_ids(athlete.athlete_id)


def test_latency_applies_to_the_api_and_oauth_only(sbx: StravaSandbox, http: httpx.Client) -> None:
    athlete = sbx.add_athlete(3)
    sbx.set_faults(latency_seconds=0.25)
    api = http.get("/api/v3/athlete", headers=bearer(athlete.access_token))
    token = refresh(http, sbx, athlete.refresh_token)
    control = http.get("/_sandbox/usage")
    assert api.elapsed.total_seconds() >= 0.25 and token.elapsed.total_seconds() >= 0.25
    assert control.elapsed.total_seconds() < 0.2


def test_revocation_mid_sync_and_outages(sbx: StravaSandbox, http: httpx.Client) -> None:
    athlete = sbx.add_athlete(5)
    h = bearer(athlete.access_token)
    http.get("/api/v3/athlete", headers=h)  # requests before the fault is set do not count
    sbx.set_faults(revoke_after_requests={athlete.athlete_id: 2})
    codes = [http.get("/api/v3/athlete", headers=h).status_code for _ in range(3)]
    assert codes == [200, 200, 401]
    assert refresh(http, sbx, athlete.refresh_token).status_code == 400
    assert sbx.faults.revoke_after_requests == {}

    other = sbx.add_athlete(5)
    h = bearer(other.access_token)
    sbx.set_faults(outage_after_requests=2)
    codes = [http.get("/api/v3/athlete", headers=h).status_code for _ in range(4)]
    assert codes == [200, 200, 503, 503]
    sbx.clear_faults()
    assert http.get("/api/v3/athlete", headers=h).status_code == 200


def test_mutations_between_pages_break_naive_offset_paging(
    sbx: StravaSandbox, http: httpx.Client
) -> None:
    athlete = sbx.add_athlete(300)
    before = {a["id"] for a in sbx.activities(athlete.athlete_id)}
    sbx.set_faults(
        mutate_between_pages=[
            {"athlete_id": athlete.athlete_id, "after_page": 1, "add": 2, "delete": 3}
        ]
    )
    naive = list_all(http, athlete.access_token, per_page=100)  # newest first, by offset
    (mutation,) = sbx.mutations
    assert len(mutation["added"]) == 2 and len(mutation["deleted"]) == 3
    assert set(mutation["deleted"]) <= set(ids(naive[:100]))  # from the page already served
    now = {a["id"] for a in sbx.activities(athlete.athlete_id)}
    assert now == (before - set(mutation["deleted"])) | set(mutation["added"])
    newest = sorted(sbx.activities(athlete.athlete_id), key=lambda a: (a["start_date"], a["id"]))
    assert set(ids(newest[-2:])) == set(mutation["added"])  # "newest" is the default
    missed = now - set(ids(naive))
    assert missed  # offsets shifted under the naive client: it never saw some activities
    assert sbx.faults.mutate_between_pages == []

    sbx.set_faults(
        mutate_between_pages=[
            {"athlete_id": athlete.athlete_id, "after_page": 2, "add": 3, "where": "inside"}
        ]
    )
    h = bearer(athlete.access_token)
    http.get(ACTIVITIES, headers=h, params={"after": 0})
    assert len(sbx.mutations) == 1  # not after the first page
    http.get(ACTIVITIES, headers=h, params={"after": 0})
    inside = sbx.mutations[-1]["added_activities"]
    truth = sbx.activities(athlete.athlete_id)
    first, last = truth[0]["start_date"], truth[-1]["start_date"]
    assert len(inside) == 3 and all(first < a["start_date"] < last for a in inside)


def test_fault_values_are_validated(sbx: StravaSandbox) -> None:
    with pytest.raises(ValueError, match="unknown faults"):
        sbx.set_faults(no_such_fault=1)
    with pytest.raises(ValueError):
        sbx.set_faults(error_5xx_rate=2)
    with pytest.raises(LookupError):
        sbx.set_faults(revoke_after_requests={424242: 1})
    assert sbx.faults == Faults()


# -- synthetic athletes --------------------------------------------------------------------------
def test_generate_activities_is_deterministic_fast_and_realistic() -> None:
    end = datetime(2026, 6, 1, 12, tzinfo=UTC)
    started = time.perf_counter()
    big = generate_activities(5, 42, 10_000, end=end, id_start=10**10)
    assert time.perf_counter() - started < 2.0
    assert big == generate_activities(5, 42, 10_000, end=end, id_start=10**10)
    assert big[:2000] != generate_activities(6, 42, 2000, end=end, id_start=10**10)
    assert generate_activities(5, 42, 0, end=end, id_start=1) == []
    assert len(big) == len({a["id"] for a in big}) == 10_000
    assert big == sorted(big, key=lambda a: (a["start_date"], a["id"]))
    assert all(b["id"] > a["id"] for a, b in zip(big, big[1:], strict=False))
    ties = sum(n for n in Counter(a["start_date"] for a in big).values() if n > 1)
    assert 10 <= ties <= 150  # about 0.5% share their start second with another
    assert all(epoch(a) + a["elapsed_time"] < end.timestamp() for a in big)
    assert len({a["start_date"][:4] for a in big}) >= 10  # years of history
    sports = Counter(a["sport_type"] for a in big)
    assert sports.most_common(1)[0][0] == "Run" and len(sports) >= 10
    manual = [a for a in big if a["manual"]]
    assert manual and all(a["start_latlng"] is None and a["upload_id"] is None for a in manual)
    assert all("elev_high" not in a for a in manual)
    trainer = [a for a in big if a["trainer"]]
    assert {a["sport_type"] for a in trainer} >= {"VirtualRide", "Run"}
    assert all(a["start_latlng"] is None and "elev_low" not in a for a in trainer)
    assert all(a["visibility"] == "only_me" for a in big if a["private"])
    assert any(not a["has_heartrate"] and "average_heartrate" not in a for a in big)
    assert any(not a["name"].isascii() for a in big)
    for a in big[:500]:
        local = datetime.fromisoformat(a["start_date_local"]) - datetime.fromisoformat(
            a["start_date"]
        )
        assert local == timedelta(seconds=a["utc_offset"])
        assert a["timezone"].startswith("(GMT") and ") " in a["timezone"]
        # Some devices report more moving than elapsed time (kept as Strava sends it).
        assert a["elapsed_time"] >= 0 and a["moving_time"] >= 0 and a.get("distance", 0) >= 0
        if a["start_latlng"]:
            lat, lng = decode_polyline(a["map"]["summary_polyline"])[0]
            assert (
                abs(lat - a["start_latlng"][0]) <= 0.01 and abs(lng - a["start_latlng"][1]) <= 0.01
            )


def test_histories_differ_between_athletes_and_cover_several_countries() -> None:
    end = datetime(2026, 1, 1, tzinfo=UTC)
    zones = set()
    for athlete_id in range(1, 13):
        acts = generate_activities(3, athlete_id, 300, end=end, id_start=athlete_id * 10**6)
        zones |= {a["timezone"] for a in acts}
        assert Counter(a["type"] for a in acts).most_common(1)[0][0] == "Run"  # runs lead
    assert len(zones) >= 5
    names = {a["name"] for a in generate_activities(3, 1, 3000, end=end, id_start=1)}
    assert len(names) > 20


def decode_polyline(text: str) -> list[tuple[float, float]]:
    """Google's polyline decoding, written independently of the encoder under test."""
    values, shift, acc = [], 0, 0
    for ch in text:
        b = ord(ch) - 63
        acc |= (b & 0x1F) << shift
        shift += 5
        if b < 0x20:
            values.append(~(acc >> 1) if acc & 1 else acc >> 1)
            shift = acc = 0
    points, lat, lng = [], 0, 0
    for i in range(0, len(values), 2):
        lat, lng = lat + values[i], lng + values[i + 1]
        points.append((lat / 1e5, lng / 1e5))
    return points


# -- control API over HTTP -----------------------------------------------------------------------
def test_control_endpoints(sbx: StravaSandbox, http: httpx.Client) -> None:
    created = http.post("/_sandbox/athletes", json={"n_activities": 12, "seed": 3})
    assert created.status_code == 201
    handle = created.json()
    aid = handle["athlete_id"]
    assert set(handle) == {
        "athlete_id", "refresh_token", "authorization_code", "access_token", "expires_at", "scopes"
    }  # fmt: skip
    assert len(http.get(f"/_sandbox/athletes/{aid}/activities").json()) == 12
    assert http.get("/_sandbox/athletes").json()[0]["refresh_token"] == handle["refresh_token"]
    generated = http.post(f"/_sandbox/athletes/{aid}/activities").json()
    backdated = http.post(
        f"/_sandbox/athletes/{aid}/activities", json={"start_date": "2020-02-02T10:00:00Z"}
    ).json()
    assert backdated["start_date"] == "2020-02-02T10:00:00Z"
    given = http.post(
        f"/_sandbox/athletes/{aid}/activities",
        json={"name": "Typed in", "start_date": "2021-01-01T08:00:00Z", "sport_type": "Run"},
    ).json()
    assert given["id"] > backdated["id"] > generated["id"]
    renamed = http.patch(f"/_sandbox/athletes/{aid}/activities/{given['id']}", json={"name": "R"})
    assert renamed.json()["name"] == "R"
    for activity in (generated, backdated, given):
        http.delete(f"/_sandbox/athletes/{aid}/activities/{activity['id']}")
    assert len(sbx.activities(aid)) == 12
    assert http.delete(f"/_sandbox/athletes/{aid}/activities/1").status_code == 404
    assert http.get("/_sandbox/athletes/999/activities").status_code == 404

    faults = http.put("/_sandbox/faults", json={"error_5xx_next": 2, "latency_seconds": 0})
    assert faults.json()["error_5xx_next"] == 2
    assert (
        http.put("/_sandbox/faults", json={"truncate_body_next": 1}).json()["error_5xx_next"] == 2
    )
    assert http.put("/_sandbox/faults", json={"bogus": 1}).status_code == 400
    http.put("/_sandbox/faults", json={"revoke_after_requests": {str(aid): 5}})
    assert sbx.faults.revoke_after_requests == {aid: 5}
    http.delete("/_sandbox/faults")
    assert sbx.faults == Faults()

    assert http.put("/_sandbox/limits", json={"read_15min": 7}).json()["read_15min"] == 7
    assert sbx.limits == RateLimits(read_15min=7)
    usage = http.get("/_sandbox/usage").json()
    assert usage["limit_read_15min"] == 7 and usage["usage_15min"] == 0  # control is not metered
    before = sbx.now()
    http.post("/_sandbox/clock", json={"advance": 3600})
    assert 3600 <= sbx.now() - before < 3610
    http.post("/_sandbox/clock", json={"epoch": 1_700_000_000})
    assert abs(http.get("/_sandbox/clock").json()["now"] - 1_700_000_000) < 5

    code = http.post(f"/_sandbox/athletes/{aid}/authorize").json()["authorization_code"]
    http.post(f"/_sandbox/athletes/{aid}/revoke")
    assert refresh(http, sbx, handle["refresh_token"]).status_code == 400
    assert oauth(http, sbx, grant_type="authorization_code", code=code).status_code == 400
    log = http.get("/_sandbox/requests").json()
    assert [r["kind"] for r in log].count("oauth") == 2
    assert {r["kind"] for r in log} == {"control", "oauth"}
    http.delete("/_sandbox/requests")
    assert len(sbx.requests) == 1  # only the DELETE itself, logged after it ran
    assert http.get("/_sandbox/mutations").json() == []
    assert http.get("/_sandbox/nope").status_code == 404
    assert http.post("/_sandbox/athletes", content=b"{not json").status_code == 400


# -- the server itself ---------------------------------------------------------------------------
def test_keep_alive_headers_and_prompt_stop() -> None:
    sandbox = StravaSandbox(seed=2)
    athlete = sandbox.add_athlete(3)
    server = SandboxServer(sandbox).start()
    assert server.api_url == server.url + "/api/v3"
    assert server.oauth_url == server.url + "/oauth/token"
    host, port = server.url.removeprefix("http://").split(":")
    conn = HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", "/api/v3/athlete", headers=bearer(athlete.access_token))
    first = conn.getresponse()
    first.read()
    sock = conn.sock
    conn.request("GET", "/api/v3/athlete", headers=bearer(athlete.access_token))
    second = conn.getresponse()
    assert second.read() and conn.sock is sock  # one connection for both (keep-alive)
    assert second.version == 11 and second.getheader("Date")
    assert int(second.getheader("Content-Length")) > 0
    started = time.perf_counter()
    server.stop()  # with the keep-alive connection still open
    assert time.perf_counter() - started < 2.0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{host}:{port}/_sandbox/usage", timeout=1)
    with pytest.raises(OSError):  # the server closed the idle keep-alive connection too
        conn.request("GET", "/api/v3/athlete", headers=bearer(athlete.access_token))
        conn.getresponse()
    conn.close()


def test_serve_prints_sandbox_credentials_and_stops(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sync_assets_sandbox")
    out = io.StringIO()
    stop = threading.Event()
    ready: list[SandboxServer] = []
    thread = threading.Thread(
        target=serve,
        args=("127.0.0.1", 0),
        kwargs={
            "seed": 4,
            "athletes": 2,
            "sizes": [40],
            "out": out,
            "stop": stop,
            "on_ready": ready.append,
        },
    )
    thread.start()
    try:
        for _ in range(100):
            if ready:
                break
            time.sleep(0.05)
        (server,) = ready
        athletes = httpx.get(f"{server.url}/_sandbox/athletes").json()
        assert [a["activities"] for a in athletes] == [40, 40]
        text = out.getvalue()
        assert f"STRAVA_API_URL={server.api_url}" in text and server.oauth_url in text
        for a in athletes:
            assert str(a["athlete_id"]) in text and a["refresh_token"] in text
            assert a["authorization_code"] in text
        secret_query = {
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
            "grant_type": "refresh_token",
            "refresh_token": athletes[0]["refresh_token"],
        }
        assert httpx.post(server.oauth_url, params=secret_query).status_code == 200
        log = httpx.get(f"{server.url}/_sandbox/requests").json()
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert "/oauth/token" in caplog.text  # requests are logged (at DEBUG)...
    for secret in ("sandbox-secret", athletes[0]["refresh_token"]):
        assert secret not in caplog.text  # ...without their secrets
        assert secret not in str(log)
