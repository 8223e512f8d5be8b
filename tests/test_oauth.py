"""Users connect Strava from the app, offline: the service's `/strava/connect` -> the sandbox's
`/oauth/authorize` -> the service's `/strava/callback` -> the stored connection -> the new-user
sensor; and every refusal, each leaving the stored connections as they were."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from cryptography.fernet import Fernet
from dagster import SensorResult, build_sensor_context, instance_for_test
from pydantic import SecretStr

from sync_assets.apps.oauth import REASONS, TOKEN_REASONS, OAuthSettings, StravaOAuth
from sync_assets.apps.webhooks import WebhookServer
from sync_assets.core.storage import close_stores, open_store
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.sensors.new_users import new_strava_users

from .helpers import add_users

JWT_SECRET = "project-jwt-secret-" + "j" * 24
ISSUER = "https://testref.supabase.co/auth/v1"
APP_URL = "https://app.example/settings/strava"


def supabase_jwt(user: str, *, secret: str = JWT_SECRET, **claims: Any) -> str:
    """An access token as Supabase Auth issues it (HS256, the project's secret)."""
    now = int(time.time())
    payload = {
        "sub": user,
        "aud": "authenticated",
        "role": "authenticated",
        "iss": ISSUER,
        "iat": now,
        "exp": now + 3600,
        "email": "someone@example.com",
        **claims,
    }
    return jwt.encode(payload, secret, algorithm="HS256")


def unsigned_jwt(user: str) -> str:
    """The same claims with `alg: none` and no signature."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = jwt.decode(supabase_jwt(user), options={"verify_signature": False})
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


class Service:
    """The web service (OAuth routes) on a port of its own, against the sandbox and a store."""

    def __init__(
        self, sandbox, server, url: str | None, data_dir: Path, state_secret: str | None = None
    ) -> None:
        self.sandbox, self.url, self.data_dir = sandbox, url, data_dir
        self.store = open_store(url, data_dir)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.settings = OAuthSettings(
            jwt_secret=SecretStr(JWT_SECRET),
            jwt_issuer=ISSUER,
            state_secret=SecretStr(state_secret or secrets.token_urlsafe(32)),
            app_return_url=APP_URL,
            redirect_uri=f"{self.base}/strava/callback",
            client_id=sandbox.client_id,
            client_secret=SecretStr(sandbox.client_secret),
            authorize_url=f"{server.url}/oauth/authorize",
            token_url=server.oauth_url,
        )
        self.oauth = StravaOAuth(self.settings, self.store)
        self.http = httpx.Client(timeout=30)

    @contextmanager
    def running(self) -> Iterator[Service]:
        with WebhookServer(None, oauth=self.oauth, sock=self.sock), self.http:
            yield self

    def user(self) -> str:
        user = str(uuid.uuid4())
        if self.url:
            add_users(self.url, user)
        return user

    def connect(self, token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return self.http.get(f"{self.base}/strava/connect", headers=headers)

    def authorize(self, token: str, athlete_id: int, **decision: str) -> str:
        """/strava/connect, then the athlete's decision on the sandbox's page: the callback
        URL Strava sends the browser to."""
        to_strava = self.connect(token)
        assert to_strava.status_code == 302, to_strava.text
        extra = {"athlete_id": str(athlete_id), "decision": "approve", **decision}
        answer = self.http.get(f"{to_strava.headers['location']}&{urlencode(extra)}")
        assert answer.status_code == 302, answer.text
        return answer.headers["location"]

    def callback(self, url: str) -> dict[str, str]:
        """Follow Strava's redirect to the callback: the query the app is sent back with."""
        answer = self.http.get(url)
        assert answer.status_code == 302, answer.text
        location = answer.headers["location"]
        assert location.startswith(APP_URL + "?")
        return {k: v[-1] for k, v in parse_qs(urlsplit(location).query).items()}

    def connections(self) -> dict[str, tuple[Any, ...]]:
        """Every stored connection, tokens included: what a refusal must leave as it was."""
        return {
            c.user_id: (
                c.athlete_id,
                c.scopes,
                c.status,
                c.tokens.access_token.get_secret_value(),
                c.tokens.refresh_token.get_secret_value(),
            )
            for c in self.store.list_connections(status=None)
        }


@pytest.fixture
def service(sandbox, server, pg_url, tmp_path, monkeypatch) -> Iterator[Service]:
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    with Service(sandbox, server, pg_url, tmp_path / "data").running() as svc:
        yield svc
    close_stores()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_user_connects_through_strava_and_the_new_user_sensor_syncs_them(
    database, sandbox, server, tmp_path, request, monkeypatch
) -> None:
    url = request.getfixturevalue("pg_url") if database == "postgres" else None
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    athlete = sandbox.add_athlete(n_activities=5)
    with Service(sandbox, server, url, tmp_path / "data").running() as svc:
        user = svc.user()
        to_strava = svc.connect(supabase_jwt(user))
        assert to_strava.status_code == 302
        asked = urlsplit(to_strava.headers["location"])
        query = {k: v[-1] for k, v in parse_qs(asked.query).items()}
        assert f"{asked.scheme}://{asked.netloc}{asked.path}" == svc.settings.authorize_url
        assert query["client_id"] == sandbox.client_id and query["response_type"] == "code"
        assert query["redirect_uri"] == svc.settings.redirect_uri
        assert query["scope"] == "read,activity:read_all" and query["state"]
        # The sandbox's consent page (the demo's), then the athlete approves, unchecking
        # activity:read_all: the redirect carries the scopes granted, fewer than asked.
        page = svc.http.get(to_strava.headers["location"])
        assert page.status_code == 200 and "Authorize" in page.text
        callback = svc.authorize(
            supabase_jwt(user), athlete.athlete_id, granted_scope="read,activity:read"
        )
        back = svc.callback(callback)
        assert back == {
            "strava": "connected",
            "athlete_id": str(athlete.athlete_id),
            "scope": "activity:read,read",
        }
        conn = svc.store.get(user)
        assert conn.athlete_id == athlete.athlete_id and conn.status == "active"
        assert conn.scopes == "activity:read,read"  # as granted on the redirect
        access = conn.tokens.access_token.get_secret_value()
        # The stored tokens are the sandbox's, and work.
        me = httpx.get(f"{server.api_url}/athlete", headers={"Authorization": f"Bearer {access}"})
        assert me.status_code == 200 and me.json()["id"] == athlete.athlete_id

    with (
        instance_for_test() as instance,
        build_sensor_context(
            instance=instance,
            resources={
                "supabase": SupabaseResource(database_url=url, data_dir=str(tmp_path / "data"))
            },
        ) as ctx,
    ):
        result = new_strava_users(ctx)
    assert isinstance(result, SensorResult)
    assert [r.run_key for r in result.run_requests] == [f"initial-sync:{user}"]
    assert result.dynamic_partitions_requests[0].partition_keys == [user]
    close_stores()


def test_every_refusal_leaves_the_connections_as_they_were(
    service, sandbox, server, capsys
) -> None:
    svc = service
    athlete = sandbox.add_athlete(n_activities=3)
    owner = svc.user()
    assert svc.callback(svc.authorize(supabase_jwt(owner), athlete.athlete_id)) == {
        "strava": "connected",
        "athlete_id": str(athlete.athlete_id),
        "scope": "activity:read_all,read",
    }
    replayable = svc.authorize(supabase_jwt(owner), athlete.athlete_id)
    assert svc.callback(replayable)["strava"] == "connected"
    other = svc.user()
    table: list[tuple[str, str, str]] = []

    # /strava/connect: a token that is not a signed-in user's of this project is a 401.
    now = int(time.time())
    tokens = {
        "no token": None,
        "expired": supabase_jwt(other, exp=now - 60, iat=now - 3660),
        "unsigned (alg none)": unsigned_jwt(other),
        "another project's secret": supabase_jwt(other, secret="another-secret-" + "x" * 24),
        "another project's issuer": supabase_jwt(other, iss="https://other.supabase.co/auth/v1"),
        "the anon key (aud, role anon)": supabase_jwt(other, aud="anon", role="anon"),
        "a service token (role service_role)": supabase_jwt(other, role="service_role"),
        "no sub": jwt.encode(
            {"aud": "authenticated", "role": "authenticated", "iss": ISSUER, "exp": now + 60},
            JWT_SECRET,
            algorithm="HS256",
        ),
    }
    expected_401 = {
        "no token": "missing_token",
        "expired": "expired_token",
        "unsigned (alg none)": "invalid_token",
        "another project's secret": "invalid_token",
        "another project's issuer": "wrong_project",
        "the anon key (aud, role anon)": "wrong_project",
        "a service token (role service_role)": "not_a_user",
        "no sub": "invalid_token",
    }
    before = svc.connections()
    for case, token in tokens.items():
        answer = svc.connect(token)
        assert answer.status_code == 401 and "location" not in answer.headers, case
        assert answer.json() == {"error": expected_401[case]}, case
        assert JWT_SECRET not in answer.text
        table.append(("GET /strava/connect", case, f"401 {expected_401[case]}"))

    # /strava/callback: the app is told why; nothing is stored or overwritten.
    good = svc.authorize(supabase_jwt(other), athlete.athlete_id)  # the owner's athlete
    good_query = {k: v[-1] for k, v in parse_qs(urlsplit(good).query).items()}
    claims = jwt.decode(good_query["state"], options={"verify_signature": False})
    secret = svc.settings.state_secret.get_secret_value()
    forged = jwt.encode(claims, "not-the-service-secret-" + "z" * 16, algorithm="HS256")
    head, _, rest = good_query["state"].partition(".")
    body = json.loads(base64.urlsafe_b64decode(rest.split(".")[0] + "=="))
    altered = base64.urlsafe_b64encode(json.dumps({**body, "sub": owner}).encode()).rstrip(b"=")
    tampered = f"{head}.{altered.decode()}.{rest.split('.')[1]}"
    expired = jwt.encode({**claims, "exp": now - 1, "iat": now - 601}, secret, algorithm="HS256")
    callback = svc.settings.redirect_uri

    def with_state(state: str | None) -> str:
        query = {k: v for k, v in good_query.items() if k != "state"}
        if state is not None:
            query["state"] = state
        return f"{callback}?{urlencode(query)}"

    declined = svc.authorize(supabase_jwt(other), athlete.athlete_id, decision="deny")
    assert "error=access_denied" in declined and "code=" not in declined
    no_activity = svc.authorize(supabase_jwt(other), athlete.athlete_id, granted_scope="read")
    cases = {
        "no state": (with_state(None), "missing_state"),
        "forged state (another secret)": (with_state(forged), "invalid_state"),
        "state altered to another user": (with_state(tampered), "invalid_state"),
        "expired state": (with_state(expired), "expired_state"),
        "replayed callback": (replayable, "replayed_state"),
        "user declined (error=access_denied)": (declined, "access_denied"),
        "only `read` granted": (no_activity, "insufficient_scope"),
        "athlete connected to another user": (good, "athlete_already_connected"),
    }
    before = svc.connections()
    for case, (url, reason) in cases.items():
        back = svc.callback(url)
        assert back == {"strava": "error", "reason": reason}, case
        assert svc.connections() == before, case  # nothing stored, nothing overwritten
        table.append(("GET /strava/callback", case, f"302 to the app, reason={reason}"))
    assert other not in before and before[owner][0] == athlete.athlete_id
    # A replay on another process of the service (its own server and store, the same database
    # and secrets) too: the spent nonce is in the database.
    second = Service(sandbox, server, svc.url, svc.data_dir, state_secret=secret)
    with second.running():
        again = second.callback(good.replace(svc.base, second.base))
    assert again == {"strava": "error", "reason": "replayed_state"}
    table.append(("GET /strava/callback", "replay on a second server", "reason=replayed_state"))
    assert {r.split("=")[-1] for *_, r in table if "reason=" in r} <= set(REASONS)
    assert set(expected_401.values()) == set(TOKEN_REASONS)
    with capsys.disabled():
        print("\nOAuth refusals:")
        for where, case, outcome in table:
            print(f"  {where:<22} {case:<38} {outcome}")


def test_the_sandbox_refuses_a_bad_authorize_request(sandbox, server) -> None:
    base = {
        "client_id": sandbox.client_id,
        "redirect_uri": "http://127.0.0.1:9/strava/callback",
        "response_type": "code",
        "scope": "read,activity:read_all",
        "state": "s",
    }
    url = f"{server.url}/oauth/authorize"
    for change, field in (
        ({"client_id": "12345"}, "client_id"),
        ({"redirect_uri": "not a url"}, "redirect_uri"),
        ({"response_type": "token"}, "response_type"),
        ({"scope": "read,everything"}, "scope"),
        ({"decision": "approve", "athlete_id": "1", "granted_scope": "read"}, "athlete_id"),
        ({"decision": "approve", "granted_scope": "activity:write"}, "granted_scope"),
        ({"decision": "maybe"}, "decision"),
    ):
        answer = httpx.get(url, params={**base, **change})
        assert answer.status_code == 400 and "location" not in answer.headers, change
        assert answer.json()["errors"][0]["field"] == field
