"""A Strava API v3 stand-in with the behaviour a client must cope with, served on loopback.

What it copies, from Strava's public documentation (developers.strava.com):

* "Rate Limits" (docs/rate-limits): limits are per application, shared by all its athletes.
  Default overall limit 200 requests / 15 minutes and 2,000 / day; default read ("non-upload")
  limit 100 / 15 minutes and 1,000 / day. 15-minute windows reset at :00, :15, :30 and :45, the
  daily window at midnight UTC. Every response carries `X-RateLimit-Limit`, `X-RateLimit-Usage`,
  `X-ReadRateLimit-Limit` and `X-ReadRateLimit-Usage`, each "15-minute,daily". Exceeding a limit
  returns 429 with a JSON error; requests over the short limit still count toward the daily one.
* "API Reference", List Athlete Activities (`GET /athlete/activities`): `before`, `after` (epoch
  seconds), `page`, `per_page` (default 30, at most 200); SummaryActivity objects. Private
  activities ("only_me") need the `activity:read_all` scope, others `activity:read`.
* "Authentication" (docs/authentication): `POST /oauth/token` with `client_id`, `client_secret`
  and `grant_type` = `authorization_code` (with `code`) or `refresh_token` (with
  `refresh_token`); the answer holds `access_token`, `refresh_token`, `expires_at`,
  `expires_in` (access tokens live six hours) and, for a code, the `athlete`. A refresh may
  return a new refresh token: the old one then stops working, so the newest must be stored.
* Errors are JSON: `{"message": ..., "errors": [{"resource", "field", "code"}]}`: 401
  "Authorization Error" for a bad access token, 400 "Bad Request" for an invalid grant.

Observed behaviour that clients rely on: with `after`, activities come oldest first, otherwise
newest first; `after` and `before` are strict bounds.

Beyond Strava, it keeps a ground truth (`activities()`), a request log, a settable clock
(windows and token expiry follow it; so does the `Date` header) and fault injection (`Faults`).
Everything a test does in-process is also reachable over HTTP under `/_sandbox/`.
"""

from __future__ import annotations

import bisect
import copy
import json
import random
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from sync_assets.sandbox.synthetic import CITIES, generate_activities, make_activity

QUARTER = 15 * 60
DAY = 86_400
MAX_PER_PAGE = 200
DEFAULT_PER_PAGE = 30
JSON_TYPE = "application/json; charset=utf-8"


@dataclass
class RateLimits:
    overall_15min: int = 200
    overall_daily: int = 2_000
    read_15min: int = 100
    read_daily: int = 1_000


@dataclass
class Faults:
    """Each fault is off by default; counts (`*_next`) are consumed as requests arrive."""

    latency_seconds: float = 0.0
    latency_jitter_seconds: float = 0.0
    error_5xx_rate: float = 0.0
    error_5xx_next: int = 0
    drop_connection_rate: float = 0.0
    drop_connection_next: int = 0
    truncate_body_next: int = 0
    malformed_page_next: int = 0
    malformed_activities: int = 0  # per athlete: this many activities are served corrupt
    revoke_after_requests: dict[int, int] = field(default_factory=dict)
    outage_after_requests: int | None = None  # after N more API requests, 503 until cleared
    mutate_between_pages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AthleteHandle:
    athlete_id: int
    refresh_token: str
    authorization_code: str
    access_token: str
    expires_at: int
    scopes: str


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    action: str = "send"  # "send" | "drop" (close without answering) | "truncate"


@dataclass
class _Athlete:
    id: int
    profile: dict[str, Any]
    scopes: str
    activities: dict[int, dict[str, Any]]
    index: list[tuple[int, int]] = field(default_factory=list)  # sorted (start epoch, id)
    api_requests: int = 0
    list_pages_served: int = 0

    def reindex(self) -> None:
        self.index = sorted((_epoch(a["start_date"]), a["id"]) for a in self.activities.values())


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def _error(status: int, message: str, resource: str, fld: str, code: str) -> Response:
    body = {"message": message, "errors": [{"resource": resource, "field": fld, "code": code}]}
    return Response(status, json.dumps(body).encode(), [("Content-Type", JSON_TYPE)])


def _json(status: int, value: Any) -> Response:
    return Response(
        status, json.dumps(value, ensure_ascii=False).encode(), [("Content-Type", JSON_TYPE)]
    )


HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>"
    b"502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


class StravaSandbox:
    """All state of one sandboxed Strava application; thread-safe."""

    def __init__(
        self,
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",
        seed: int = 0,
        token_lifetime_seconds: int = 21_600,
        rotate_refresh_tokens: bool = True,
        limits: RateLimits | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.seed = seed
        self.token_lifetime_seconds = token_lifetime_seconds
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.limits = limits or RateLimits()
        self.faults = Faults()
        self.requests: list[dict[str, Any]] = []
        self.mutations: list[dict[str, Any]] = []  # what mutate_between_pages did
        self._lock = threading.RLock()
        self._offset = 0.0
        self._rng = random.Random(seed)
        self._athletes: dict[int, _Athlete] = {}
        self._next_athlete = 10_000_001
        self._next_activity = 1_000_000_000 + seed % 1000 * 10_000_000
        self._access: dict[str, tuple[int, int, str]] = {}  # token -> (athlete, expires_at, scopes)
        self._refresh: dict[str, int] = {}  # token -> athlete
        self._codes: dict[str, int] = {}
        self._revoke_at: dict[int, int] = {}  # athlete -> API request count that revokes it
        self._api_total = 0
        self._outage_at: int | None = None
        self._usage = {"w15": -1, "wday": -1, "all15": 0, "allday": 0, "read15": 0, "readday": 0}

    # -- clock -----------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self._offset

    def set_clock(self, epoch: float) -> None:
        with self._lock:
            self._offset = epoch - time.time()

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    # -- athletes and ground truth --------------------------------------------------------
    def _token(self, prefix: str) -> str:
        return f"{prefix}{secrets.token_hex(20)}"

    def _issue_access(self, athlete_id: int, scopes: str) -> tuple[str, int]:
        token = self._token("sbx_at_")
        expires_at = int(self.now()) + self.token_lifetime_seconds
        self._access[token] = (athlete_id, expires_at, scopes)
        return token, expires_at

    def add_athlete(
        self,
        n_activities: int = 100,
        *,
        seed: int | None = None,
        scopes: str = "read,activity:read_all",
        years: float | None = None,
        athlete_id: int | None = None,
    ) -> AthleteHandle:
        with self._lock:
            aid = athlete_id or self._next_athlete
            self._next_athlete = max(self._next_athlete, aid) + 1
            rng = random.Random((seed if seed is not None else self.seed) * 7919 + aid)
            acts = generate_activities(
                seed if seed is not None else self.seed + aid,
                aid,
                n_activities,
                end=datetime.fromtimestamp(self.now(), UTC) - timedelta(hours=1),
                years=years,
                id_start=self._next_activity,
            )
            self._next_activity += n_activities + 1
            city = rng.choice(CITIES)
            profile = {
                "id": aid,
                "username": f"athlete{aid}",
                "resource_state": 2,
                "firstname": rng.choice(["Léa", "Jonas", "Amelia", "Kenji", "Sofía", "Ingrid"]),
                "lastname": rng.choice(["Martin", "Müller", "Smith", "Tanaka", "García", "Berg"]),
                "bio": None,
                "city": city.name,
                "state": None,
                "country": None,
                "sex": rng.choice(["M", "F"]),
                "premium": rng.random() < 0.3,
                "summit": rng.random() < 0.3,
                "created_at": "2012-04-01T10:00:00Z",
                "updated_at": "2024-01-01T10:00:00Z",
                "badge_type_id": 0,
                "weight": None,
                "profile_medium": "avatar/athlete/medium.png",
                "profile": "avatar/athlete/large.png",
                "friend": None,
                "follower": None,
            }
            athlete = _Athlete(aid, profile, scopes, {a["id"]: a for a in acts})
            athlete.reindex()
            self._athletes[aid] = athlete
            refresh = self._token("sbx_rt_")
            self._refresh[refresh] = aid
            code = self._token("sbx_code_")
            self._codes[code] = aid
            access, expires_at = self._issue_access(aid, scopes)
            return AthleteHandle(aid, refresh, code, access, expires_at, scopes)

    def athletes(self) -> list[dict[str, Any]]:
        """Every athlete with a current refresh token and code (sandbox credentials)."""
        with self._lock:
            out = []
            for aid, athlete in self._athletes.items():
                refresh = next((t for t, a in self._refresh.items() if a == aid), None)
                code = next((c for c, a in self._codes.items() if a == aid), None)
                out.append(
                    {
                        "athlete_id": aid,
                        "refresh_token": refresh,
                        "authorization_code": code,
                        "activities": len(athlete.activities),
                        "scopes": athlete.scopes,
                    }
                )
            return out

    def activities(self, athlete_id: int) -> list[dict[str, Any]]:
        """Ground truth, oldest first (by start_date, then id)."""
        with self._lock:
            athlete = self._athletes[athlete_id]
            return [copy.deepcopy(athlete.activities[i]) for _, i in athlete.index]

    def add_activity(
        self,
        athlete_id: int,
        activity: dict[str, Any] | None = None,
        *,
        start_date: datetime | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            athlete = self._athletes[athlete_id]
            if activity is None:
                start = start_date or datetime.fromtimestamp(self.now() - 3600, UTC)
                activity = make_activity(
                    self._rng,
                    athlete_id=athlete_id,
                    activity_id=self._next_activity,
                    start=start.astimezone(UTC).replace(microsecond=0),
                    home=self._rng.choice(CITIES),
                )
                self._next_activity += 1
            athlete.activities[activity["id"]] = copy.deepcopy(activity)
            athlete.reindex()
            return copy.deepcopy(activity)

    def delete_activity(self, athlete_id: int, activity_id: int) -> None:
        with self._lock:
            athlete = self._athletes[athlete_id]
            athlete.activities.pop(activity_id)
            athlete.reindex()

    def revoke(self, athlete_id: int) -> None:
        """Deauthorize the application for this athlete: every token it had stops working."""
        with self._lock:
            self._access = {t: v for t, v in self._access.items() if v[0] != athlete_id}
            self._refresh = {t: a for t, a in self._refresh.items() if a != athlete_id}

    # -- limits, faults, log --------------------------------------------------------------
    def set_limits(self, limits: RateLimits) -> None:
        with self._lock:
            self.limits = limits

    def set_faults(self, **changes: Any) -> None:
        with self._lock:
            known = {f.name for f in fields(Faults)}
            unknown = set(changes) - known
            if unknown:
                raise ValueError(f"unknown faults: {sorted(unknown)}")
            for name, value in changes.items():
                if name == "outage_after_requests":
                    self._outage_at = None if value is None else self._api_total + int(value)
                if name == "revoke_after_requests":
                    # Counted from now: "revoke after this athlete's next N API requests".
                    value = {int(k): int(v) for k, v in value.items()}
                    self._revoke_at = {
                        aid: self._athletes[aid].api_requests + n for aid, n in value.items()
                    }
                setattr(self.faults, name, value)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults = Faults()
            self._revoke_at.clear()
            self._outage_at = None

    def _roll_windows(self) -> None:
        now = self.now()
        u = self._usage
        w15, wday = int(now // QUARTER), int(now // DAY)
        if wday != u["wday"]:
            u["allday"] = u["readday"] = 0
        if w15 != u["w15"] or wday != u["wday"]:
            u["all15"] = u["read15"] = 0
        u["w15"], u["wday"] = w15, wday

    def usage(self) -> dict[str, int]:
        with self._lock:
            self._roll_windows()
            u = self._usage
            return {
                "usage_15min": u["all15"],
                "usage_daily": u["allday"],
                "read_usage_15min": u["read15"],
                "read_usage_daily": u["readday"],
                **{f"limit_{k}": v for k, v in asdict(self.limits).items()},
            }

    def reset_usage(self) -> None:
        with self._lock:
            self._usage.update(all15=0, allday=0, read15=0, readday=0)

    def request_count(self, kind: str = "api", path_prefix: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for r in self.requests
                if r["kind"] == kind and (path_prefix is None or r["path"].startswith(path_prefix))
            )

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def _log(
        self,
        kind: str,
        method: str,
        path: str,
        query: dict[str, str],
        status: int,
        athlete_id: int | None,
    ) -> None:
        self.requests.append(
            {
                "time": self.now(),
                "kind": kind,
                "method": method,
                "path": path,
                "query": query,
                "status": status,
                "athlete_id": athlete_id,
            }
        )

    def _rate_headers(self) -> list[tuple[str, str]]:
        u, lim = self._usage, self.limits
        return [
            ("X-RateLimit-Limit", f"{lim.overall_15min},{lim.overall_daily}"),
            ("X-RateLimit-Usage", f"{u['all15']},{u['allday']}"),
            ("X-ReadRateLimit-Limit", f"{lim.read_15min},{lim.read_daily}"),
            ("X-ReadRateLimit-Usage", f"{u['read15']},{u['readday']}"),
        ]

    def latency(self) -> float:
        f = self.faults
        if not f.latency_seconds and not f.latency_jitter_seconds:
            return 0.0
        with self._lock:
            return max(0.0, f.latency_seconds + self._rng.uniform(-1, 1) * f.latency_jitter_seconds)

    # -- HTTP entry point -----------------------------------------------------------------
    def handle(
        self, method: str, path: str, query_string: str, headers: dict[str, str], body: bytes
    ) -> Response:
        query = {k: v[-1] for k, v in parse_qs(query_string, keep_blank_values=True).items()}
        if path.startswith("/_sandbox/"):
            resp = self._control(method, path, body)
            with self._lock:
                self._log("control", method, path, query, resp.status, None)
            return resp
        if path == "/oauth/token":
            form = dict(query)
            ctype = headers.get("content-type", "")
            if "json" in ctype and body:
                try:
                    form.update({k: str(v) for k, v in json.loads(body).items()})
                except (ValueError, AttributeError):
                    return _error(400, "Bad Request", "Application", "body", "invalid")
            elif body:
                form.update(
                    {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
                )
            with self._lock:
                resp = self._oauth(form)
                self._log("oauth", method, path, {}, resp.status, None)
            return resp
        if path.startswith("/api/v3/"):
            with self._lock:
                resp, athlete_id = self._api(method, path[len("/api/v3") :], query, headers)
                resp.headers.extend(self._rate_headers())
                self._log("api", method, path, query, resp.status, athlete_id)
            return resp
        return _error(404, "Record Not Found", "resource", "path", "invalid")

    # -- OAuth ----------------------------------------------------------------------------
    def _oauth(self, form: dict[str, str]) -> Response:
        for name in ("client_id", "client_secret", "grant_type"):
            if not form.get(name):
                return _error(400, "Bad Request", "Application", name, "missing")
        if form["client_id"] != self.client_id:
            return _error(401, "Bad Request", "Application", "client_id", "invalid")
        if form["client_secret"] != self.client_secret:
            return _error(401, "Bad Request", "Application", "client_secret", "invalid")
        grant = form["grant_type"]
        if grant == "authorization_code":
            code = form.get("code")
            if not code:
                return _error(400, "Bad Request", "AuthorizationCode", "code", "missing")
            aid = self._codes.pop(code, None)  # single use
            if aid is None:
                return _error(400, "Bad Request", "AuthorizationCode", "code", "invalid")
            athlete = self._athletes[aid]
            refresh = self._token("sbx_rt_")
            self._refresh[refresh] = aid
            access, expires_at = self._issue_access(aid, athlete.scopes)
            return _json(
                200,
                {
                    "token_type": "Bearer",
                    "expires_at": expires_at,
                    "expires_in": expires_at - int(self.now()),
                    "refresh_token": refresh,
                    "access_token": access,
                    "athlete": {**athlete.profile, "resource_state": 2},
                },
            )
        if grant == "refresh_token":
            token = form.get("refresh_token")
            if not token:
                return _error(400, "Bad Request", "RefreshToken", "refresh_token", "missing")
            aid = self._refresh.get(token)
            if aid is None:
                return _error(400, "Bad Request", "RefreshToken", "refresh_token", "invalid")
            if self.rotate_refresh_tokens:
                del self._refresh[token]
                token = self._token("sbx_rt_")
                self._refresh[token] = aid
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

    # -- API ------------------------------------------------------------------------------
    def _api(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[Response, int | None]:
        self._roll_windows()
        u, lim, f = self._usage, self.limits, self.faults
        is_read = method == "GET"
        u["all15"] += 1
        u["allday"] += 1
        if is_read:
            u["read15"] += 1
            u["readday"] += 1
        over = (
            u["all15"] > lim.overall_15min
            or u["allday"] > lim.overall_daily
            or (is_read and (u["read15"] > lim.read_15min or u["readday"] > lim.read_daily))
        )
        if over:
            return _error(429, "Rate Limit Exceeded", "Application", "rate limit", "exceeded"), None
        self._api_total += 1
        if self._outage_at is not None and self._api_total > self._outage_at:
            page = HTML_502.replace(b"502 Bad Gateway", b"503 Service Unavailable")
            return Response(503, page, [("Content-Type", "text/html")]), None
        if f.drop_connection_next > 0 or (
            f.drop_connection_rate and self._rng.random() < f.drop_connection_rate
        ):
            f.drop_connection_next = max(0, f.drop_connection_next - 1)
            return Response(0, action="drop"), None
        if f.error_5xx_next > 0 or (f.error_5xx_rate and self._rng.random() < f.error_5xx_rate):
            f.error_5xx_next = max(0, f.error_5xx_next - 1)
            status = self._rng.choice([500, 502, 503])
            if status == 500:
                return _json(500, {"message": "Internal Server Error", "errors": []}), None
            return Response(
                status,
                HTML_502.replace(b"502 Bad Gateway", f"{status} Error".encode()),
                [("Content-Type", "text/html")],
            ), None
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        grant = self._access.get(token)
        if grant is None or grant[1] <= self.now():
            return _error(401, "Authorization Error", "Athlete", "access_token", "invalid"), None
        aid, _, scopes = grant
        athlete = self._athletes[aid]
        athlete.api_requests += 1
        limit = self._revoke_at.get(aid)
        if limit is not None and athlete.api_requests > limit:
            del self._revoke_at[aid]
            f.revoke_after_requests.pop(aid, None)
            self.revoke(aid)
            return _error(401, "Authorization Error", "Athlete", "access_token", "invalid"), aid
        if method != "GET":
            return _error(405, "Method Not Allowed", "resource", "method", "invalid"), aid
        if path == "/athlete":
            return self._maybe_truncate(_json(200, {**athlete.profile, "resource_state": 3})), aid
        if path == "/athlete/activities":
            if "activity:read" not in scopes:
                return _error(
                    401, "Authorization Error", "AccessToken", "activity:read_permission", "missing"
                ), aid
            return self._list(athlete, query, "activity:read_all" in scopes), aid
        return _error(404, "Record Not Found", "resource", "path", "invalid"), aid

    def _maybe_truncate(self, resp: Response) -> Response:
        if self.faults.truncate_body_next > 0:
            self.faults.truncate_body_next -= 1
            resp.action = "truncate"
        return resp

    def _list(self, athlete: _Athlete, query: dict[str, str], read_all: bool) -> Response:
        try:
            page = int(query.get("page") or 1)
            per_page = int(query.get("per_page") or DEFAULT_PER_PAGE)
            after = int(query["after"]) if query.get("after") else None
            before = int(query["before"]) if query.get("before") else None
        except ValueError:
            return _error(400, "Bad Request", "Application", "query", "invalid")
        if page < 1 or per_page < 1:
            return _error(
                400, "Bad Request", "Application", "page" if page < 1 else "per_page", "invalid"
            )
        per_page = min(per_page, MAX_PER_PAGE)
        lo = 0 if after is None else bisect.bisect_right(athlete.index, (after, float("inf")))
        hi = (
            len(athlete.index)
            if before is None
            else bisect.bisect_left(athlete.index, (before, -1))
        )
        selected = athlete.index[lo:hi]
        if after is None:
            selected = selected[::-1]
        acts = [athlete.activities[i] for _, i in selected]
        if not read_all:
            acts = [a for a in acts if not a.get("private")]
        chunk = acts[(page - 1) * per_page : page * per_page]
        corrupt = self._corrupt_ids(athlete)
        payload = [self._corrupt(a) if a["id"] in corrupt else a for a in chunk]
        athlete.list_pages_served += 1
        self._mutate_after_page(athlete)
        if self.faults.malformed_page_next > 0:
            self.faults.malformed_page_next -= 1
            text = json.dumps(payload, ensure_ascii=False)
            return Response(
                200,
                text[: max(1, len(text) // 3)].encode() + b'{"id": ,]',
                [("Content-Type", JSON_TYPE)],
            )
        return self._maybe_truncate(_json(200, payload))

    def _corrupt_ids(self, athlete: _Athlete) -> set[int]:
        k = self.faults.malformed_activities
        if k <= 0:
            return set()
        ids = sorted(athlete.activities)
        return set(random.Random(self.seed * 31 + athlete.id).sample(ids, min(k, len(ids))))

    @staticmethod
    def _corrupt(activity: dict[str, Any]) -> dict[str, Any]:
        """A deterministic kind of damage per activity, as real payloads sometimes carry."""
        bad = dict(activity)
        kind = activity["id"] % 4
        if kind == 0:
            bad["distance"] = -abs(bad["distance"]) - 1
        elif kind == 1:
            bad["moving_time"] = "unknown"
        elif kind == 2:
            bad["start_latlng"] = [123.4, 567.8]
        else:
            bad.pop("name", None)
        return bad

    def _mutate_after_page(self, athlete: _Athlete) -> None:
        for spec in list(self.faults.mutate_between_pages):
            if int(spec["athlete_id"]) != athlete.id:
                continue
            if athlete.list_pages_served != int(spec.get("after_page", 1)):
                continue
            self.faults.mutate_between_pages.remove(spec)
            served_oldest = [i for _, i in athlete.index]
            deleted = []
            for _ in range(int(spec.get("delete", 0))):
                # Delete among the oldest: positions a naive offset listing has already passed.
                victim = served_oldest[self._rng.randrange(0, max(1, len(served_oldest) // 10))]
                served_oldest.remove(victim)
                athlete.activities.pop(victim, None)
                deleted.append(victim)
            added = []
            first, last = athlete.index[0][0], athlete.index[-1][0]
            for _ in range(int(spec.get("add", 0))):
                if spec.get("where", "newest") == "inside":
                    start = self._rng.randrange(first, last)
                else:
                    start = int(self.now()) - self._rng.randrange(60, 3600)
                act = make_activity(
                    self._rng,
                    athlete_id=athlete.id,
                    activity_id=self._next_activity,
                    start=datetime.fromtimestamp(start, UTC),
                    home=self._rng.choice(CITIES),
                )
                self._next_activity += 1
                athlete.activities[act["id"]] = act
                added.append(act["id"])
            athlete.reindex()
            self.mutations.append(
                {
                    "athlete_id": athlete.id,
                    "after_page": spec.get("after_page"),
                    "added": added,
                    "deleted": deleted,
                }
            )

    # -- control API ----------------------------------------------------------------------
    def _control(self, method: str, path: str, body: bytes) -> Response:
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return _json(400, {"message": "body is not JSON"})
        parts = path.strip("/").split("/")[1:]
        try:
            if parts == ["athletes"] and method == "GET":
                return _json(200, self.athletes())
            if parts == ["athletes"] and method == "POST":
                handle = self.add_athlete(
                    int(data.get("n_activities", 100)),
                    seed=data.get("seed"),
                    scopes=data.get("scopes", "read,activity:read_all"),
                    years=data.get("years"),
                )
                return _json(201, asdict(handle))
            if len(parts) == 3 and parts[0] == "athletes" and parts[2] == "activities":
                aid = int(parts[1])
                if method == "GET":
                    return _json(200, self.activities(aid))
                if method == "POST":
                    return _json(201, self.add_activity(aid, data or None))
            if len(parts) == 4 and parts[0] == "athletes" and method == "DELETE":
                self.delete_activity(int(parts[1]), int(parts[3]))
                return _json(200, {"deleted": int(parts[3])})
            if len(parts) == 3 and parts[2] == "revoke" and method == "POST":
                self.revoke(int(parts[1]))
                return _json(200, {"revoked": int(parts[1])})
            if parts == ["faults"] and method == "PUT":
                self.set_faults(**data)
                return _json(200, asdict(self.faults))
            if parts == ["faults"] and method == "DELETE":
                self.clear_faults()
                return _json(200, asdict(self.faults))
            if parts == ["faults"] and method == "GET":
                return _json(200, asdict(self.faults))
            if parts == ["limits"] and method == "PUT":
                self.set_limits(RateLimits(**{**asdict(self.limits), **data}))
                return _json(200, asdict(self.limits))
            if parts == ["usage"] and method == "GET":
                return _json(200, self.usage())
            if parts == ["clock"] and method == "POST":
                if "epoch" in data:
                    self.set_clock(float(data["epoch"]))
                if "advance" in data:
                    self.advance_clock(float(data["advance"]))
                return _json(200, {"now": self.now()})
            if parts == ["requests"] and method == "GET":
                with self._lock:
                    return _json(200, list(self.requests))
            if parts == ["requests"] and method == "DELETE":
                self.clear_requests()
                return _json(200, {"cleared": True})
        except (KeyError, ValueError, TypeError) as exc:
            return _json(400, {"message": f"{type(exc).__name__}: {exc}"})
        return _json(404, {"message": f"no control endpoint {method} {path}"})
