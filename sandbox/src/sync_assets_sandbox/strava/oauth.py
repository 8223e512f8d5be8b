"""Strava's OAuth: `POST /oauth/token` (codes, refresh tokens) and `/oauth/deauthorize`, and
the tokens they issue.
"""

from __future__ import annotations

import secrets

from sync_assets_sandbox.strava.common import (
    DAY,
    Response,
    _clone,
    _error,
    _Grant,
    _json,
    _not_found,
    _unauthorized,
)


class OAuthMixin:
    """The OAuth part of `StravaSandbox` (its state is set up by `SandboxState`)."""

    def _issue_access(self, athlete_id: int, scopes: str) -> tuple[str, int]:
        token = secrets.token_hex(20)
        expires_at = int(self.now()) + self.token_lifetime_seconds
        if len(self._access) > 10_000:  # forget long-expired tokens in long-running sandboxes
            cutoff = self.now() - DAY
            self._access = {t: g for t, g in self._access.items() if g.expires_at > cutoff}
        self._access[token] = _Grant(athlete_id, expires_at, frozenset(scopes.split(",")))
        return token, expires_at

    def _issue_refresh(self, athlete_id: int) -> str:
        token = secrets.token_hex(20)
        self._refresh[token] = athlete_id
        return token

    # -- OAuth ----------------------------------------------------------------------------
    def _oauth(
        self, method: str, path: str, form: dict[str, str], headers: dict[str, str]
    ) -> Response:
        if method != "POST":
            return _not_found()
        if path == "/oauth/deauthorize":
            token = form.get("access_token") or self._bearer(headers)
            grant = self._access.get(token)
            if grant is None or grant.expires_at <= self.now():
                return _unauthorized()
            self.revoke(grant.athlete_id)
            return _json(200, {"access_token": token})
        for name in ("client_id", "client_secret"):
            if not form.get(name):
                return _error(400, "Bad Request", "Application", name, "missing")
        if form["client_id"] != self.client_id:
            return _error(401, "Bad Request", "Application", "client_id", "invalid")
        if not secrets.compare_digest(form["client_secret"], self.client_secret):
            return _error(401, "Bad Request", "Application", "client_secret", "invalid")
        grant_type = form.get("grant_type")
        if not grant_type:
            return _error(400, "Bad Request", "Application", "grant_type", "missing")
        if grant_type == "authorization_code":
            code = form.get("code")
            if not code:
                return _error(400, "Bad Request", "AuthorizationCode", "code", "missing")
            issued = self._codes.pop(code, None)  # single use
            if issued is None:
                return _error(400, "Bad Request", "AuthorizationCode", "code", "invalid")
            aid, scopes = issued
            refresh = self._issue_refresh(aid)
            access, expires_at = self._issue_access(aid, scopes)
            return _json(
                200,
                {
                    "token_type": "Bearer",
                    "expires_at": expires_at,
                    "expires_in": expires_at - int(self.now()),
                    "refresh_token": refresh,
                    "access_token": access,
                    "athlete": _clone(self._athletes[aid].profile),
                },
            )
        if grant_type == "refresh_token":
            token = form.get("refresh_token")
            if not token:
                return _error(400, "Bad Request", "RefreshToken", "refresh_token", "missing")
            aid = self._refresh.get(token)
            if aid is None:
                return _error(400, "Bad Request", "RefreshToken", "refresh_token", "invalid")
            if self.rotate_refresh_tokens:
                del self._refresh[token]  # the old one stops working at once
                token = self._issue_refresh(aid)
            access, expires_at = self._issue_access(aid, self._athletes[aid].scopes)
            return _json(
                200,
                {
                    "token_type": "Bearer",
                    "access_token": access,
                    "expires_at": expires_at,
                    "expires_in": expires_at - int(self.now()),
                    "refresh_token": token,
                },
            )
        return _error(400, "Bad Request", "Application", "grant_type", "invalid")

    @staticmethod
    def _bearer(headers: dict[str, str]) -> str:
        scheme, _, token = headers.get("authorization", "").strip().partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""
