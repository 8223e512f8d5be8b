"""Strava's OAuth: `GET /oauth/authorize` (the athlete's consent), `POST /oauth/token` (codes,
refresh tokens) and `/oauth/deauthorize`, and the tokens they issue.

`GET /oauth/authorize` takes Strava's query (developers.strava.com, "Authentication":
`client_id`, `redirect_uri`, `response_type=code`, `approval_prompt` auto|force, `scope`
comma-separated, `state`). Without a decision it answers a small HTML page where an athlete of
the sandbox approves (unchecking scopes if they like) or declines. The page's form comes back
to the same URL with the sandbox's own parameters, which tests send directly:
`athlete_id` (who is signed in to "Strava"), `decision` = approve|deny and, for approve,
`granted_scope` (default: every scope asked). Approve redirects to
`redirect_uri?state=S&code=C&scope=GRANTED` (a single-use code for `/oauth/token`); deny to
`redirect_uri?state=S&error=access_denied`, as Strava does. A bad `client_id`,
`redirect_uri`, `response_type` or `scope` is a 400 in Strava's error shape, with no redirect.
"""

from __future__ import annotations

import html
import secrets
from urllib.parse import urlencode, urlsplit

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

# Strava's scopes (developers.strava.com, "Authentication", "Details About Requesting Access").
STRAVA_SCOPES = (
    "read",
    "read_all",
    "profile:read_all",
    "profile:write",
    "activity:read",
    "activity:read_all",
    "activity:write",
)
# Unchecking "private activities" on Strava's page leaves the lesser scope granted.
IMPLIED = {"activity:read_all": "activity:read", "read_all": "read"}


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

    # -- the consent page ---------------------------------------------------------------
    def _authorize(self, query: dict[str, str]) -> Response:
        """`GET /oauth/authorize`: checks Strava's parameters, then the page or the redirect."""
        if not query.get("client_id"):
            return _error(400, "Bad Request", "Application", "client_id", "missing")
        if query["client_id"] != self.client_id:
            return _error(400, "Bad Request", "Application", "client_id", "invalid")
        redirect = query.get("redirect_uri", "")
        if not redirect:
            return _error(400, "Bad Request", "Application", "redirect_uri", "missing")
        parts = urlsplit(redirect)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return _error(400, "Bad Request", "Application", "redirect_uri", "invalid")
        if query.get("response_type") != "code":
            return _error(400, "Bad Request", "Application", "response_type", "invalid")
        if query.get("approval_prompt", "auto") not in ("auto", "force"):
            return _error(400, "Bad Request", "Application", "approval_prompt", "invalid")
        asked = [s for s in query.get("scope", "read").replace(" ", ",").split(",") if s]
        if not asked or any(s not in STRAVA_SCOPES for s in asked):
            return _error(400, "Bad Request", "Application", "scope", "invalid")
        decision = query.get("decision")
        if decision is None:
            return self._consent_page(query, asked)
        back = {"state": query.get("state", "")}
        if decision == "deny":
            back["error"] = "access_denied"
        elif decision == "approve":
            granted = [
                s
                for s in query.get("granted_scope", ",".join(asked)).replace(" ", ",").split(",")
                if s
            ]
            grantable = set(asked) | {IMPLIED[s] for s in asked if s in IMPLIED}
            if any(s not in grantable for s in granted):  # only what is asked (or less of it)
                return _error(400, "Bad Request", "Application", "granted_scope", "invalid")
            try:  # who is signed in to "Strava" (the page's select; UnknownRecord is a ValueError)
                athlete = self._athlete(int(query.get("athlete_id", "")))
            except ValueError:
                return _error(400, "Bad Request", "Athlete", "athlete_id", "invalid")
            scope = ",".join(granted)
            back["code"] = self.authorize(athlete.id, scope)
            back["scope"] = scope
        else:
            return _error(400, "Bad Request", "Application", "decision", "invalid")
        glue = "&" if parts.query else "?"
        return Response(302, b"", [("Location", redirect + glue + urlencode(back))])

    def _consent_page(self, query: dict[str, str], asked: list[str]) -> Response:
        """The demo's "Authorize" page: pick an athlete and the scopes, approve or decline."""
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in query.items()
            if k not in ("decision", "athlete_id", "granted_scope")
        )
        athletes = "".join(
            f'<option value="{aid}">athlete {aid}</option>' for aid in sorted(self._athletes)
        )
        scopes = "".join(
            f'<label><input type="checkbox" name="scope_box" value="{s}" checked> {s}</label><br>'
            for s in asked
        )
        page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Authorize - Strava sandbox</title></head>
<body>
<h1>Authorize this application</h1>
<p>Application {html.escape(self.client_id)} asks to: {html.escape(", ".join(asked))}.</p>
<form method="get" action="/oauth/authorize"
      onsubmit="this.granted_scope.value = Array.from(this.querySelectorAll(
        'input[name=scope_box]:checked')).map(b => b.value).join(',')">
{hidden}<input type="hidden" name="granted_scope" value="">
<p><label>Signed in as <select name="athlete_id">{athletes}</select></label></p>
<p>{scopes}</p>
<button type="submit" name="decision" value="approve">Authorize</button>
<button type="submit" name="decision" value="deny">Cancel</button>
</form>
</body></html>
"""
        return Response(200, page.encode(), [("Content-Type", "text/html; charset=utf-8")])

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
