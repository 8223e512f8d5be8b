"""The Strava sandbox itself, spoken to as a plain HTTP client would (httpx, no project code)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest
from sync_assets_sandbox import RateLimits, generate_activities

from .helpers import quarter_not_midnight


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=5) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refresh(http, sandbox, token: str, secret: str | None = None) -> httpx.Response:
    return http.post(
        "/oauth/token",
        data={
            "client_id": sandbox.client_id,
            "client_secret": secret or sandbox.client_secret,
            "grant_type": "refresh_token",
            "refresh_token": token,
        },
    )


def test_oauth_grants_rotation_and_errors(sandbox, http) -> None:
    athlete = sandbox.add_athlete(5)
    code = http.post(
        "/oauth/token",
        data={
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "grant_type": "authorization_code",
            "code": athlete.authorization_code,
        },
    )
    assert code.status_code == 200
    body = code.json()
    assert body["athlete"]["id"] == athlete.athlete_id and body["token_type"] == "Bearer"
    assert body["expires_in"] == pytest.approx(21600, abs=2)
    again = http.post(
        "/oauth/token",
        data={
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "grant_type": "authorization_code",
            "code": athlete.authorization_code,
        },
    )
    assert again.status_code == 400  # codes are single use
    assert again.json()["errors"][0] == {
        "resource": "AuthorizationCode",
        "field": "code",
        "code": "invalid",
    }
    first = refresh(http, sandbox, athlete.refresh_token)
    assert first.status_code == 200
    rotated = first.json()["refresh_token"]
    assert rotated != athlete.refresh_token and "athlete" not in first.json()
    stale = refresh(http, sandbox, athlete.refresh_token)
    assert stale.status_code == 400
    assert stale.json() == {
        "message": "Bad Request",
        "errors": [{"resource": "RefreshToken", "field": "refresh_token", "code": "invalid"}],
    }
    wrong = refresh(http, sandbox, rotated, secret="nope")
    assert wrong.status_code == 401
    assert wrong.json()["errors"][0]["field"] == "client_secret"
    assert "x-ratelimit-usage" not in wrong.headers  # the token endpoint is not metered
    assert refresh(http, sandbox, rotated).status_code == 200


def test_access_tokens_expire_on_the_sandbox_clock(sandbox, http) -> None:
    athlete = sandbox.add_athlete(3)
    assert http.get("/api/v3/athlete", headers=bearer(athlete.access_token)).status_code == 200
    sandbox.advance_clock(6 * 3600 + 1)
    resp = http.get("/api/v3/athlete", headers=bearer(athlete.access_token))
    assert resp.status_code == 401
    assert resp.json()["message"] == "Authorization Error"
    date = datetime.strptime(resp.headers["date"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    assert abs(date.timestamp() - sandbox.now()) < 2  # the Date header follows the clock


def test_listing_order_bounds_and_page_sizes(sandbox, http) -> None:
    athlete = sandbox.add_athlete(450)
    truth = sandbox.activities(athlete.athlete_id)
    h = bearer(athlete.access_token)
    newest_first = http.get("/api/v3/athlete/activities", headers=h).json()
    assert len(newest_first) == 30  # Strava's default per_page
    assert [a["id"] for a in newest_first] == [a["id"] for a in truth[::-1][:30]]
    clamped = http.get("/api/v3/athlete/activities", headers=h, params={"per_page": 500}).json()
    assert len(clamped) == 200
    t = lambda a: int(datetime.fromisoformat(a["start_date"]).timestamp())  # noqa: E731
    after, before = t(truth[100]), t(truth[300])
    window = http.get(
        "/api/v3/athlete/activities",
        headers=h,
        params={"after": after, "before": before, "per_page": 200},
    ).json()
    expected = [a["id"] for a in truth if after < t(a) < before]  # strict bounds
    assert [a["id"] for a in window] == expected  # oldest first when `after` is given
    page2 = http.get(
        "/api/v3/athlete/activities", headers=h, params={"after": 0, "page": 2, "per_page": 200}
    ).json()
    assert [a["id"] for a in page2] == [a["id"] for a in truth[200:400]]
    bad = http.get("/api/v3/athlete/activities", headers=h, params={"per_page": "x"})
    assert bad.status_code == 400


def _order(page: list[dict]) -> str:
    starts = [a["start_date"] for a in page]
    if starts == sorted(starts):
        return "oldest first"
    return "newest first" if starts == sorted(starts, reverse=True) else "no order"


# (after alone, both bounds, no bound) for each setting of the undocumented listing order.
ORDERS = {
    "oldest-first-with-after": ("oldest first", "oldest first", "newest first"),
    "newest-first-always": ("newest first", "newest first", "newest first"),
    "newest-first-when-bounded": ("oldest first", "newest first", "newest first"),
    "unordered": ("no order", "no order", "no order"),
}


def test_the_listing_order_is_a_setting_of_the_control_api(sandbox, http) -> None:
    athlete = sandbox.add_athlete(450)
    h = bearer(athlete.access_token)
    bounds = ({"after": 0}, {"after": 0, "before": 2**40}, {})
    for order, expected in ORDERS.items():
        settings = http.put("/_sandbox/settings", json={"list_order": order})
        assert settings.status_code == 200 and settings.json()["list_order"] == order
        seen = tuple(
            _order(
                http.get(
                    "/api/v3/athlete/activities", headers=h, params={**b, "per_page": 200}
                ).json()
            )
            for b in bounds
        )
        assert seen == expected, order
    http.put("/_sandbox/settings", json={"list_order": "flipping"})
    pages = [
        _order(http.get("/api/v3/athlete/activities", headers=h, params={"after": 0}).json())
        for _ in range(3)
    ]
    assert pages == ["oldest first", "newest first", "oldest first"]
    bad = http.put("/_sandbox/settings", json={"list_order": "sideways"})
    assert bad.status_code == 400 and "list_order must be one of" in bad.json()["message"]
    assert http.put("/_sandbox/settings", json={"nope": 1}).status_code == 400
    assert http.get("/_sandbox/settings").json()["list_order"] == "flipping"
    sandbox.clear_faults()  # the order is a behaviour, not a fault: it stays
    assert sandbox.settings()["list_order"] == "flipping"


def test_the_command_line_sandbox_takes_the_listing_order(tmp_path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    cli = Path(sys.executable).with_name("sync-assets")
    proc = subprocess.Popen(
        [cli, "sandbox", "--port", "0", "--athletes", "1", "--sizes", "300", "--list-order",
         "newest-first-when-bounded"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        lines = [proc.stdout.readline() for _ in range(12)]
        url = lines[0].split(" on ", 1)[1].split()[0]
        assert any("activity lists: newest-first-when-bounded" in line for line in lines)
        with httpx.Client(base_url=url, timeout=5) as http:
            assert http.get("/_sandbox/settings").json()["list_order"] == (
                "newest-first-when-bounded"
            )
            athlete = http.get("/_sandbox/athletes").json()[0]
            token = http.post(
                "/oauth/token",
                data={
                    "client_id": "sandbox-client",
                    "client_secret": "sandbox-secret",
                    "grant_type": "refresh_token",
                    "refresh_token": athlete["refresh_token"],
                },
            ).json()["access_token"]
            page = http.get(
                "/api/v3/athlete/activities",
                headers=bearer(token),
                params={"after": 0, "before": 2**40, "per_page": 200},
            ).json()
            assert len(page) == 200 and _order(page) == "newest first"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_private_activities_need_read_all(sandbox, http) -> None:
    athlete = sandbox.add_athlete(400, scopes="read,activity:read")
    truth = sandbox.activities(athlete.athlete_id)
    private = {a["id"] for a in truth if a["private"]}
    assert private
    got = http.get(
        "/api/v3/athlete/activities",
        headers=bearer(athlete.access_token),
        params={"after": 0, "per_page": 200, "page": 1},
    ).json()
    got += http.get(
        "/api/v3/athlete/activities",
        headers=bearer(athlete.access_token),
        params={"after": 0, "per_page": 200, "page": 2},
    ).json()
    assert {a["id"] for a in got} == {a["id"] for a in truth} - private
    no_scope = sandbox.add_athlete(5, scopes="read")
    resp = http.get("/api/v3/athlete/activities", headers=bearer(no_scope.access_token))
    assert resp.status_code == 401
    assert resp.json()["errors"][0]["field"] == "activity:read_permission"


def test_rate_limit_headers_429_and_quarter_hour_reset(sandbox, http) -> None:
    athlete = sandbox.add_athlete(3)
    sandbox.set_limits(RateLimits(overall_15min=10, overall_daily=50, read_15min=3, read_daily=40))
    sandbox.set_clock(quarter_not_midnight(sandbox.now()) - 30)
    h = bearer(athlete.access_token)
    statuses = [http.get("/api/v3/athlete", headers=h) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    last = statuses[-1]
    assert last.json() == {
        "message": "Rate Limit Exceeded",
        "errors": [{"resource": "Application", "field": "rate limit", "code": "exceeded"}],
    }
    assert last.headers["x-ratelimit-limit"] == "10,50"
    assert last.headers["x-readratelimit-limit"] == "3,40"
    assert last.headers["x-readratelimit-usage"] == "4,4"  # refused requests count too
    sandbox.advance_clock(31)  # the next quarter hour
    ok = http.get("/api/v3/athlete", headers=h)
    assert ok.status_code == 200
    assert ok.headers["x-readratelimit-usage"] == "1,5"  # the daily count carries on


def test_daily_window_resets_at_midnight_utc(sandbox, http) -> None:
    athlete = sandbox.add_athlete(3)
    sandbox.set_limits(RateLimits(read_15min=100, read_daily=2))
    midnight = (sandbox.now() // 86400 + 1) * 86400
    sandbox.set_clock(midnight - 60)
    refreshed = refresh(http, sandbox, athlete.refresh_token).json()["access_token"]
    h = bearer(refreshed)
    codes = [http.get("/api/v3/athlete", headers=h).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    sandbox.advance_clock(61)
    resp = http.get("/api/v3/athlete", headers=h)
    assert resp.status_code == 200 and resp.headers["x-readratelimit-usage"] == "1,1"


def test_faults_each_do_what_they_say(sandbox, http) -> None:
    athlete = sandbox.add_athlete(50)
    h = bearer(athlete.access_token)
    sandbox.set_faults(error_5xx_next=3)
    codes = [http.get("/api/v3/athlete", headers=h).status_code for _ in range(4)]
    assert all(c >= 500 for c in codes[:3]) and codes[3] == 200
    sandbox.set_faults(drop_connection_next=1)
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/api/v3/athlete", headers=h)
    sandbox.set_faults(truncate_body_next=1)
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/api/v3/athlete/activities", headers=h)
    sandbox.set_faults(malformed_page_next=1)
    resp = http.get("/api/v3/athlete/activities", headers=h)
    with pytest.raises(ValueError):
        resp.json()
    sandbox.set_faults(malformed_activities=4)
    page = http.get("/api/v3/athlete/activities", headers=h, params={"per_page": 200}).json()
    again = http.get("/api/v3/athlete/activities", headers=h, params={"per_page": 200}).json()
    assert page == again  # the same activities, damaged the same way
    clean = {a["id"]: a for a in sandbox.activities(athlete.athlete_id)}
    assert sum(1 for a in page if a != clean[a["id"]]) == 4
    sandbox.clear_faults()
    sandbox.set_faults(latency_seconds=0.2)
    resp = http.get("/api/v3/athlete", headers=h)
    assert resp.elapsed.total_seconds() >= 0.2
    sandbox.clear_faults()
    sandbox.set_faults(revoke_after_requests={athlete.athlete_id: 1})
    assert http.get("/api/v3/athlete", headers=h).status_code == 200
    assert http.get("/api/v3/athlete", headers=h).status_code == 401
    assert refresh(http, sandbox, athlete.refresh_token).status_code == 400


def test_mutations_between_pages_are_recorded(sandbox, http) -> None:
    athlete = sandbox.add_athlete(300)
    sandbox.set_faults(
        mutate_between_pages=[
            {"athlete_id": athlete.athlete_id, "after_page": 1, "add": 2, "delete": 1}
        ]
    )
    h = bearer(athlete.access_token)
    http.get("/api/v3/athlete/activities", headers=h, params={"per_page": 200, "after": 0})
    (mutation,) = sandbox.mutations
    assert len(mutation["added"]) == 2 and len(mutation["deleted"]) == 1
    ids = {a["id"] for a in sandbox.activities(athlete.athlete_id)}
    assert set(mutation["added"]) <= ids and not set(mutation["deleted"]) & ids
    assert len(ids) == 301


def test_synthetic_athletes_are_deterministic_and_realistic() -> None:
    end = datetime(2026, 1, 1, tzinfo=UTC)
    a = generate_activities(5, 42, 10_000, end=end)
    assert a == generate_activities(5, 42, 10_000, end=end)
    assert a != generate_activities(6, 42, 10_000, end=end)
    assert generate_activities(5, 42, 0, end=end) == []
    assert len({x["id"] for x in a}) == 10_000
    starts = Counter(x["start_date"] for x in a)
    assert any(n > 1 for n in starts.values())  # some uploads share a start second
    sports = Counter(x["sport_type"] for x in a)
    assert sports.most_common(1)[0][0] == "Run" and len(sports) >= 8
    assert any(x["manual"] and x["start_latlng"] is None for x in a)  # null, as Strava's examples
    assert any(x["trainer"] for x in a)
    assert any(x["private"] for x in a)
    assert any(not x["has_heartrate"] and "average_heartrate" not in x for x in a)
    assert any(not x["name"].isascii() for x in a)
    assert len({x["timezone"] for x in a}) >= 1
    years = {x["start_date"][:4] for x in a}
    assert len(years) >= 10


def test_control_api_over_http(sandbox, http) -> None:
    created = http.post("/_sandbox/athletes", json={"n_activities": 12, "seed": 3}).json()
    aid = created["athlete_id"]
    assert len(http.get(f"/_sandbox/athletes/{aid}/activities").json()) == 12
    added = http.post(f"/_sandbox/athletes/{aid}/activities").json()
    http.delete(f"/_sandbox/athletes/{aid}/activities/{added['id']}")
    assert len(sandbox.activities(aid)) == 12
    assert http.put("/_sandbox/faults", json={"error_5xx_next": 2}).json()["error_5xx_next"] == 2
    http.delete("/_sandbox/faults")
    assert sandbox.faults.error_5xx_next == 0
    http.put("/_sandbox/limits", json={"read_15min": 7})
    assert sandbox.limits.read_15min == 7
    before = sandbox.now()
    http.post("/_sandbox/clock", json={"advance": 3600})
    assert sandbox.now() - before >= 3600
    http.post(f"/_sandbox/athletes/{aid}/revoke")
    assert refresh(http, sandbox, created["refresh_token"]).status_code == 400
    log = http.get("/_sandbox/requests").json()
    assert [r["kind"] for r in log].count("oauth") == 1
    assert http.get("/_sandbox/usage").json()["limit_read_15min"] == 7
    assert http.get("/_sandbox/nope").status_code == 404
