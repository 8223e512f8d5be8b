"""The Strava sandbox's HTTP entry point (`handle`), its request log, and the API: athlete,
activity lists and details, push subscriptions.
"""

from __future__ import annotations

import json
import math
import random
from bisect import bisect_left, bisect_right
from typing import Any

from sync_assets_sandbox.strava.common import (
    _INTEGER,
    ACTIVITY_SCOPES,
    DEFAULT_PER_PAGE,
    JSON_TYPE,
    MAX_LOGGED_REQUESTS,
    MAX_PER_PAGE,
    Response,
    _Athlete,
    _clone,
    _dumps,
    _error,
    _gateway_page,
    _Grant,
    _json,
    _not_found,
    _parse_query,
    _redact,
    _unauthorized,
)
from sync_assets_sandbox.strava.faults import _corrupt


class ApiMixin:
    """The HTTP part of `StravaSandbox` (its state is set up by `SandboxState`)."""

    # -- request log ----------------------------------------------------------------------
    def _log(
        self,
        kind: str,
        method: str,
        path: str,
        query: dict[str, str],
        status: int,
        athlete_id: int | None,
        fault: str | None = None,
    ) -> None:
        if len(self.requests) >= MAX_LOGGED_REQUESTS:
            del self.requests[: MAX_LOGGED_REQUESTS // 2]
        self.requests.append(
            {
                "time": self.now(),
                "kind": kind,
                "method": method,
                "path": path,
                "query": _redact(query),
                "status": status,
                "athlete_id": athlete_id,
                "fault": fault,
            }
        )

    def request_count(self, kind: str | None = "api", path_prefix: str | None = None) -> int:
        """Logged requests of a kind ("api", "oauth", "control", "other"; None: all)."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (kind is None or r["kind"] == kind)
                and (path_prefix is None or r["path"].startswith(path_prefix))
            )

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- HTTP entry point -----------------------------------------------------------------
    def handle(
        self, method: str, path: str, query_string: str, headers: dict[str, str], body: bytes
    ) -> Response:
        """Answer one HTTP request (`headers` with lower-case names)."""
        query = _parse_query(query_string)
        if len(path) > 1:
            path = path.rstrip("/")
        if path == "/_sandbox" or path.startswith("/_sandbox/"):
            resp = self._control(method, path, query, body)
            with self._lock:
                self._log("control", method, path, query, resp.status, None)
            return resp
        if path == "/oauth/authorize" and method == "GET":
            with self._lock:
                resp = self._authorize(query)
                logged = {k: v for k, v in query.items() if k in ("decision", "scope")}
                self._log("oauth", method, path, logged, resp.status, None)
            return resp
        if path in ("/oauth/token", "/oauth/deauthorize"):
            form = dict(query)
            form.update(self._form(headers, body))
            with self._lock:
                resp = self._oauth(method, path, form, headers)
                logged = {"grant_type": form["grant_type"]} if "grant_type" in form else {}
                self._log("oauth", method, path, logged, resp.status, None)
                resp.delay = self._latency()
            return resp
        if path == "/api/v3/push_subscriptions" or path.startswith("/api/v3/push_subscriptions/"):
            resp = self._push(method, path, {**query, **self._form(headers, body)})
            with self._lock:
                self._log("push", method, path, {}, resp.status, None)
            return resp
        if path.startswith("/api/v3/"):
            with self._lock:
                resp, athlete_id, fault = self._api(method, path[len("/api/v3") :], query, headers)
                self._log("api", method, path, query, resp.status, athlete_id, fault)
                resp.delay = self._latency()
                if self._hold_at is not None and self._api_requests > self._hold_at:
                    resp.held = self.holding
            return resp
        resp = _not_found()
        with self._lock:
            self._log("other", method, path, query, resp.status, None)
        return resp

    @staticmethod
    def _form(headers: dict[str, str], body: bytes) -> dict[str, str]:
        if not body:
            return {}
        text = body.decode("utf-8", "replace")
        if "json" in headers.get("content-type", ""):
            try:
                data = json.loads(text)
            except ValueError:
                return {}
            return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        return _parse_query(text)

    def _api(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[Response, int | None, str | None]:
        """(response, athlete id for the log, fault injected or None)."""
        f = self._faults
        self._api_requests += 1
        grant = self._access.get(self._bearer(headers))
        athlete_id = grant.athlete_id if grant else None
        # Gateway faults, in front of the API: not metered, no rate-limit headers.
        if self._outage_at is not None and self._api_requests > self._outage_at:
            return _gateway_page(503), athlete_id, "outage"
        if f.drop_connection_next > 0 or (
            f.drop_connection_rate and self._rng.random() < f.drop_connection_rate
        ):
            f.drop_connection_next = max(0, f.drop_connection_next - 1)
            return Response(0, action="drop"), athlete_id, "drop"
        injected: int | None = None
        if f.error_5xx_next > 0 or (f.error_5xx_rate and self._rng.random() < f.error_5xx_rate):
            f.error_5xx_next = max(0, f.error_5xx_next - 1)
            injected = (500, 502, 503)[self._errors_injected % 3]
            self._errors_injected += 1
            if injected != 500:
                return _gateway_page(injected), athlete_id, "5xx"
        # The API itself: every request is metered, refused ones included.
        fault: str | None = None
        if self._meter(method == "GET"):
            resp = _error(429, "Rate Limit Exceeded", "Application", "rate limit", "exceeded")
        elif injected == 500:
            resp, fault = _json(500, {"message": "Internal Server Error", "errors": []}), "5xx"
        else:
            resp, fault = self._route(method, path, query, grant)
        resp.headers.extend(self._rate_headers())
        if f.truncate_body_next > 0:
            f.truncate_body_next -= 1
            resp.action, fault = "truncate", "truncate"
        return resp, athlete_id, fault

    def _route(
        self, method: str, path: str, query: dict[str, str], grant: _Grant | None
    ) -> tuple[Response, str | None]:
        if grant is None or grant.expires_at <= self.now():
            return _unauthorized(), None
        athlete = self._athletes[grant.athlete_id]
        athlete.api_requests += 1
        limit = self._revoke_at.get(athlete.id)
        if limit is not None and athlete.api_requests > limit:
            del self._revoke_at[athlete.id]
            self._faults.revoke_after_requests.pop(athlete.id, None)
            self.revoke(athlete.id)
            return _unauthorized(), "revoke"
        if method == "GET" and path == "/athlete":
            return _json(200, self._athlete_json(athlete, grant.scopes)), None
        if method == "GET" and path == "/athlete/activities":
            if not grant.scopes & ACTIVITY_SCOPES:
                return _error(
                    401, "Authorization Error", "AccessToken", "activity:read_permission", "missing"
                ), None
            return self._list(athlete, query, "activity:read_all" in grant.scopes)
        if method == "GET" and path.startswith("/activities/"):
            return self._activity(athlete, path.removeprefix("/activities/"), grant.scopes), None
        return _not_found(), None

    def _activity(self, athlete: _Athlete, ident: str, scopes: frozenset[str]) -> Response:
        """`GET /activities/{id}`: a DetailedActivity of the token's athlete; another athlete's,
        a deleted one, or a private one without `activity:read_all` is Strava's 404."""
        activity = athlete.activities.get(int(ident)) if ident.isdigit() else None
        if not scopes & ACTIVITY_SCOPES:
            return _error(
                401, "Authorization Error", "AccessToken", "activity:read_permission", "missing"
            )
        if activity is None or (activity.get("private") and "activity:read_all" not in scopes):
            return _error(404, "Record Not Found", "Activity", "id", "invalid")
        return _json(
            200, {**_clone(activity), "resource_state": 3, "description": None, "calories": None}
        )

    def _athlete_json(self, athlete: _Athlete, scopes: frozenset[str]) -> dict[str, Any]:
        profile = _clone(athlete.profile)
        if "profile:read_all" not in scopes:
            return profile
        distances: dict[str, float] = {}
        for activity in athlete.activities.values():
            gear = activity.get("gear_id")
            if gear:
                distances[gear] = distances.get(gear, 0.0) + float(activity.get("distance") or 0)

        def gear(ids: tuple[str, ...], noun: str) -> list[dict[str, Any]]:
            return [
                {
                    "id": gid,
                    "primary": i == 0,
                    "name": f"{noun} {i + 1}",
                    "resource_state": 2,
                    "distance": round(distances.get(gid, 0.0), 1),
                }
                for i, gid in enumerate(ids)
            ]

        profile.update(
            resource_state=3,
            follower_count=athlete.id % 97,
            friend_count=athlete.id % 89,
            measurement_preference="meters",
            ftp=None,
            weight=None,
            clubs=[],
            bikes=gear(athlete.model.bikes, "Bike"),
            shoes=gear(athlete.model.shoes, "Shoes"),
        )
        return profile

    def _list_params(
        self, query: dict[str, str]
    ) -> tuple[int, int, int | None, int | None] | Response:
        values: dict[str, int | None] = {}
        for name, default in (("page", 1), ("per_page", DEFAULT_PER_PAGE)):
            raw = query.get(name, "").strip()
            if raw and (not _INTEGER.match(raw) or int(raw) < 1):
                return _error(400, "Bad Request", "Application", name, "invalid")
            values[name] = int(raw) if raw else default
        for name in ("before", "after"):
            raw = query.get(name, "").strip()
            if raw and not _INTEGER.match(raw):
                return _error(400, "Bad Request", "Application", name, "invalid")
            values[name] = int(raw) if raw else None
        page, per_page = values["page"], values["per_page"]
        assert page is not None and per_page is not None
        return page, min(per_page, MAX_PER_PAGE), values["before"], values["after"]

    def _list(
        self, athlete: _Athlete, query: dict[str, str], read_all: bool
    ) -> tuple[Response, str | None]:
        params = self._list_params(query)
        if isinstance(params, Response):
            return params, None
        page, per_page, before, after = params
        index = athlete.index
        lo = 0 if after is None else bisect_right(index, (after, math.inf))
        hi = len(index) if before is None else bisect_left(index, (before, -math.inf))
        order = self._order(after is not None, before is not None)
        window = index[lo:hi] if order == "oldest" else index[lo:hi][::-1]
        skip = (page - 1) * per_page
        picked: list[dict[str, Any]] = []
        for _, activity_id in window:
            activity = athlete.activities[activity_id]
            if not read_all and activity.get("private") is True:
                continue
            if skip:
                skip -= 1
                continue
            picked.append(activity)
            if len(picked) == per_page:
                break
        if order == "unordered":
            random.Random(f"{self.seed}:unordered:{self._lists_answered}").shuffle(picked)
        self._lists_answered += 1
        chosen = self._corrupt_set(athlete)
        payload = []
        for activity in picked:
            kind = self._corruption(activity["id"], chosen)
            if activity["id"] in self._faults.served_payloads:
                payload.append(_clone(self._faults.served_payloads[activity["id"]]))
                continue
            payload.append(activity if kind is None else _corrupt(activity, kind))
        body = _dumps(payload)
        athlete.list_pages += 1
        athlete.served.extend(a["id"] for a in picked)
        del athlete.served[:-5_000]
        self._run_mutations(athlete)
        fault = None
        if self._faults.malformed_page_next > 0:
            self._faults.malformed_page_next -= 1
            body, fault = body[: max(1, len(body) * 3 // 5)] + b',{"id":,]', "malformed_page"
        return Response(200, body, [("Content-Type", JSON_TYPE)]), fault

    def _order(self, has_after: bool, has_before: bool) -> str:
        """ "oldest", "newest" or "unordered" for a list request with these bounds."""
        order = self.list_order
        if order == "newest-first-always":
            return "newest"
        if order == "newest-first-when-bounded":
            return "oldest" if has_after and not has_before else "newest"
        if order == "unordered":
            return "unordered"
        if order == "flipping":
            return ("oldest", "newest")[self._lists_answered % 2]
        return "oldest" if has_after else "newest"

    # -- push subscriptions (webhooks) ----------------------------------------------------
    def _push(self, method: str, path: str, form: dict[str, str]) -> Response:
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return _error(401, "Authorization Error", "Application", "client_secret", "invalid")
        if method == "POST" and path == "/api/v3/push_subscriptions":
            missing = [k for k in ("callback_url", "verify_token") if not form.get(k)]
            if missing:
                return _error(400, "Bad Request", "PushSubscription", missing[0], "missing")
            status, body = self.push.subscribe(form["callback_url"], form["verify_token"])
            return _json(status, body)
        if method == "GET" and path == "/api/v3/push_subscriptions":
            return _json(200, self.push.list())
        if method == "DELETE":
            tail = path.rsplit("/", 1)[-1]
            if tail.isdigit() and self.push.unsubscribe(int(tail)):
                return Response(204)
        return _not_found()
