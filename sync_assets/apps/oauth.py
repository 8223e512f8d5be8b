"""Users connect Strava from the app: `GET /strava/connect` and `GET /strava/callback`.

The flow (Strava's "Authentication", developers.strava.com; Supabase's "JSON Web Token"):

1. The app sends a signed-in user to `/strava/connect` with their Supabase access token (an
   `Authorization: Bearer` header, or `?access_token=` for a plain browser navigation). The
   token is an HS256 JWT signed with the project's JWT secret; it must name the project
   (`iss` = `https://<ref>.supabase.co/auth/v1`), be for signed-in users (`aud` and `role`
   "authenticated"), be unexpired and carry the user's uuid in `sub`. Anything else is a 401.
2. The service answers a redirect to Strava's authorize URL with the scopes the sync needs
   and a `state`: a JWT signed with the service's own state secret, naming the user, a random
   nonce, a short expiry and an audience of its own (a Supabase token is never a state).
3. Strava sends the user back to `/strava/callback` with `state` and either `code` and `scope`
   (the scopes granted, maybe fewer than asked) or `error=access_denied`. The state is checked
   (signature, expiry) and spent (its nonce recorded in the database, so a replay fails in any
   process), the code is exchanged, and the connection is stored with the granted scopes,
   unless the athlete is held by another user (nothing is overwritten). The user goes back to
   the app's URL with `strava=connected` or `strava=error&reason=<code>` (`REASONS`).
4. The new-user sensor (`new_strava_users`) sees the new active connection and starts the
   history sync: the web service never talks to Dagster.

No secret (JWT secret, state secret, client secret, tokens, the code) is logged or put in a
redirect: reasons are fixed codes.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sync_assets.core.clients.strava import (
    ACTIVITY_SCOPES,
    DEFAULT_OAUTH_URL,
    exchange_code,
    parse_scopes,
)
from sync_assets.core.errors import SyncError
from sync_assets.core.storage import Store

log = logging.getLogger(__name__)

DEFAULT_AUTHORIZE_URL = "https://www.strava.com/oauth/authorize"
SCOPES = "read,activity:read_all"  # what a whole-history sync needs (private activities too)
STATE_TTL_SECONDS = 600
STATE_AUDIENCE = "sync_assets:strava-connect"
JWT_AUDIENCE = "authenticated"
CONNECT_PATH = "/strava/connect"
CALLBACK_PATH = "/strava/callback"

# Why a connection was refused: the `reason` of the redirect back to the app (fixed codes).
REASONS = {
    "missing_state": "the callback came without a state",
    "invalid_state": "the state was not signed by this service (forged or altered)",
    "expired_state": "the state expired: the user took too long, or it is an old link",
    "replayed_state": "the state was used before",
    "access_denied": "the user declined on Strava's page",
    "authorization_failed": "Strava answered an error other than access_denied",
    "missing_code": "the callback came without a code",
    "insufficient_scope": "the user unchecked activity access: nothing could be synced",
    "exchange_failed": "Strava refused the code (or could not be reached)",
    "athlete_already_connected": "this Strava athlete is connected to another user",
    "storage_failed": "the connection could not be stored",
}


# Why `/strava/connect` answered 401 (`{"error": <code>}`): the token is not a signed-in user's
# of this project.
TOKEN_REASONS = {
    "missing_token": "no Authorization: Bearer header nor access_token parameter",
    "expired_token": "the Supabase access token expired",
    "invalid_token": "not an HS256 JWT signed with the project's secret (alg none, another "
    "secret, altered), or without a uuid `sub`",
    "wrong_project": "signed right but for another audience or issuer (another project, anon)",
    "not_a_user": "its role is not authenticated (e.g. service_role)",
}


class Refused(Exception):
    """A refusal with its fixed reason code (never a secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class OAuthSettings:
    """What the OAuth endpoints need; `from_env` reads them (README, "Connecting from the
    app")."""

    jwt_secret: SecretStr  # SUPABASE_JWT_SECRET: the project's JWT secret (HS256)
    jwt_issuer: str  # from SUPABASE_URL or SUPABASE_PROJECT_REF: https://<ref>.supabase.co/auth/v1
    state_secret: SecretStr  # SYNC_ASSETS_OAUTH_STATE_SECRET: signs `state`
    app_return_url: str  # SYNC_ASSETS_APP_URL: where the user goes back
    redirect_uri: str  # STRAVA_REDIRECT_URI: this service's public /strava/callback URL
    client_id: str  # STRAVA_CLIENT_ID
    client_secret: SecretStr  # STRAVA_CLIENT_SECRET
    authorize_url: str = DEFAULT_AUTHORIZE_URL  # STRAVA_AUTHORIZE_URL
    token_url: str = DEFAULT_OAUTH_URL  # STRAVA_OAUTH_URL
    scopes: str = SCOPES
    state_ttl_seconds: int = STATE_TTL_SECONDS

    def __post_init__(self) -> None:
        if len(self.state_secret.get_secret_value()) < 32:
            raise ValueError("SYNC_ASSETS_OAUTH_STATE_SECRET needs at least 32 characters")
        for name in ("app_return_url", "redirect_uri", "authorize_url"):
            parts = urlsplit(getattr(self, name))
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{name} must be an http(s) URL")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OAuthSettings | None:
        """The settings, or None when SUPABASE_JWT_SECRET is unset (no OAuth endpoints)."""
        env = dict(os.environ if env is None else env)
        secret = env.get("SUPABASE_JWT_SECRET")
        if not secret:
            return None
        issuer = supabase_issuer(env.get("SUPABASE_URL"), env.get("SUPABASE_PROJECT_REF"))
        needed = [
            "SYNC_ASSETS_OAUTH_STATE_SECRET",
            "SYNC_ASSETS_APP_URL",
            "STRAVA_REDIRECT_URI",
            "STRAVA_CLIENT_ID",
            "STRAVA_CLIENT_SECRET",
        ]
        missing = [n for n in needed if not env.get(n)]
        if issuer is None:
            missing.insert(0, "SUPABASE_URL (or SUPABASE_PROJECT_REF)")
        if missing:
            raise ValueError(f"SUPABASE_JWT_SECRET is set: also set {', '.join(missing)}")
        return cls(
            jwt_secret=SecretStr(secret),
            jwt_issuer=str(issuer),
            state_secret=SecretStr(env["SYNC_ASSETS_OAUTH_STATE_SECRET"]),
            app_return_url=env["SYNC_ASSETS_APP_URL"],
            redirect_uri=env["STRAVA_REDIRECT_URI"],
            client_id=env["STRAVA_CLIENT_ID"],
            client_secret=SecretStr(env["STRAVA_CLIENT_SECRET"]),
            authorize_url=env.get("STRAVA_AUTHORIZE_URL") or DEFAULT_AUTHORIZE_URL,
            token_url=env.get("STRAVA_OAUTH_URL") or DEFAULT_OAUTH_URL,
        )


def supabase_issuer(url: str | None, project_ref: str | None = None) -> str | None:
    """Supabase Auth's `iss`: `<project URL>/auth/v1`."""
    if url:
        return url.rstrip("/") + "/auth/v1"
    if project_ref:
        return f"https://{project_ref}.supabase.co/auth/v1"
    return None


class StravaOAuth:
    """The two endpoints (`routes()`, for `webhooks.create_app`) over a store."""

    def __init__(
        self, settings: OAuthSettings, store: Store, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.store = store
        self._clock = clock

    def routes(self) -> list[Route]:
        return [
            Route(CONNECT_PATH, self.connect, methods=["GET"]),
            Route(CALLBACK_PATH, self.callback, methods=["GET"]),
        ]

    # -- who is asking ------------------------------------------------------------------
    def verify_user(self, token: str) -> str:
        """The user id of a valid Supabase access token of this project; else `Refused`."""
        if not token:
            raise Refused("missing_token")
        try:
            claims = jwt.decode(
                token,
                self.settings.jwt_secret.get_secret_value(),
                algorithms=["HS256"],  # never "none", never a key confusion
                audience=JWT_AUDIENCE,
                issuer=self.settings.jwt_issuer,
                options={"require": ["exp", "sub", "aud", "iss"]},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise Refused("expired_token") from None
        except (jwt.InvalidAudienceError, jwt.InvalidIssuerError):
            raise Refused("wrong_project") from None
        except jwt.PyJWTError:
            raise Refused("invalid_token") from None
        if claims.get("role") != "authenticated":
            raise Refused("not_a_user")
        try:
            return str(uuid.UUID(str(claims["sub"])))
        except ValueError:
            raise Refused("invalid_token") from None

    # -- state --------------------------------------------------------------------------
    def issue_state(self, user_id: str) -> str:
        now = int(self._clock())
        return jwt.encode(
            {
                "sub": user_id,
                "nonce": secrets.token_urlsafe(24),
                "iat": now,
                "exp": now + self.settings.state_ttl_seconds,
                "aud": STATE_AUDIENCE,
            },
            self.settings.state_secret.get_secret_value(),
            algorithm="HS256",
        )

    def check_state(self, state: str) -> dict[str, Any]:
        """The state's claims (signed by us, unexpired); else `Refused`. Not spent yet."""
        if not state:
            raise Refused("missing_state")
        try:
            claims = jwt.decode(
                state,
                self.settings.state_secret.get_secret_value(),
                algorithms=["HS256"],
                audience=STATE_AUDIENCE,
                options={"require": ["exp", "sub", "nonce", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Refused("expired_state") from None
        except jwt.PyJWTError:
            raise Refused("invalid_state") from None
        if not isinstance(claims["nonce"], str) or not isinstance(claims["exp"], int):
            raise Refused("invalid_state")
        return claims

    # -- the endpoints ------------------------------------------------------------------
    def authorize_url(self, user_id: str) -> str:
        query = {
            "client_id": self.settings.client_id,
            "redirect_uri": self.settings.redirect_uri,
            "response_type": "code",
            "approval_prompt": "auto",
            "scope": self.settings.scopes,
            "state": self.issue_state(user_id),
        }
        return f"{self.settings.authorize_url}?{urlencode(query)}"

    async def connect(self, request: Request) -> Response:
        """`GET /strava/connect`: to Strava's authorize page (302), or its URL as JSON when
        the app asks for `application/json`; a 401 for a token that is not this project's."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        token = token or request.query_params.get("access_token", "")
        try:
            user_id = self.verify_user(token)
        except Refused as refusal:
            return JSONResponse(
                {"error": refusal.reason},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        url = self.authorize_url(user_id)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"authorize_url": url}, headers={"Cache-Control": "no-store"})
        return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})

    async def callback(self, request: Request) -> Response:
        """`GET /strava/callback`: check and spend the state, exchange the code, store the
        connection; back to the app with the outcome."""
        query = request.query_params
        try:
            athlete_id, scopes = await self._complete(
                query.get("state", ""), query.get("code", ""), query.get("scope"), query
            )
        except Refused as refusal:
            log.info("Strava connection refused: %s", refusal.reason)
            return self._back({"strava": "error", "reason": refusal.reason})
        return self._back({"strava": "connected", "athlete_id": str(athlete_id), "scope": scopes})

    async def _complete(
        self, state: str, code: str, scope: str | None, query: Any
    ) -> tuple[int, str]:
        claims = self.check_state(state)
        user_id = str(claims["sub"])
        spent = await run_in_threadpool(
            self.store.use_oauth_state, claims["nonce"], claims["exp"], int(self._clock())
        )
        if not spent:
            raise Refused("replayed_state")
        error = query.get("error")
        if error:
            raise Refused("access_denied" if error == "access_denied" else "authorization_failed")
        if not code:
            raise Refused("missing_code")
        granted = parse_scopes(scope)
        if not granted & ACTIVITY_SCOPES:
            raise Refused("insufficient_scope")
        scopes = ",".join(sorted(granted))
        try:
            tokens, athlete, _ = await run_in_threadpool(
                lambda: exchange_code(
                    client_id=self.settings.client_id,
                    client_secret=self.settings.client_secret,
                    code=code,
                    oauth_url=self.settings.token_url,
                )
            )
            athlete_id = int(athlete["id"])
        except (SyncError, KeyError, TypeError, ValueError) as exc:
            log.warning("Strava code exchange failed: %s", type(exc).__name__)
            raise Refused("exchange_failed") from None
        try:
            holder = await run_in_threadpool(
                lambda: self.store.connect_athlete(
                    user_id, tokens, athlete_id=athlete_id, scopes=scopes
                )
            )
        except Exception as exc:  # e.g. the user is not in auth.users, the database is down
            log.warning("could not store a Strava connection: %s", type(exc).__name__)
            raise Refused("storage_failed") from None
        if holder is not None:
            raise Refused("athlete_already_connected")
        return athlete_id, scopes

    def _back(self, outcome: dict[str, str]) -> Response:
        url = self.settings.app_return_url
        glue = "&" if urlsplit(url).query else "?"
        return RedirectResponse(
            f"{url}{glue}{urlencode(outcome)}",
            status_code=302,
            headers={"Cache-Control": "no-store"},
        )
