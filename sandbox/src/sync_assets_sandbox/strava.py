"""A Strava API v3 stand-in that a real client cannot tell from Strava (only base URLs differ).

It is a product feature (offline demos, users' own tests, fault injection), so what it copies
is Strava's documented behaviour, from developers.strava.com:

* API reference, "List Athlete Activities" (`GET /api/v3/athlete/activities`): query `before`
  and `after` (integer epoch seconds, strict bounds: `start_date < before`,
  `start_date > after`), `page` (default 1) and `per_page` (default 30, at most 200; larger
  values are clamped to 200; 0, negative or non-integer values are a 400). Strava documents
  no order: clients see newest first by default and oldest first when only `after` is given;
  with both bounds it is unknown. `list_order` plays each possibility (see `LIST_ORDERS`);
  the default, `oldest-first-with-after`, lists oldest first (start_date, then id) whenever
  `after` is given and newest first otherwise. It answers
  SummaryActivity objects and needs a Bearer token with scope `activity:read` or
  `activity:read_all`; private activities (`"private": true`, visibility "only_me") are listed
  only with `activity:read_all`. `GET /api/v3/athlete` answers the authenticated athlete
  (detailed, resource_state 3, with `profile:read_all`; a summary, resource_state 2, without).
* "Rate Limits": limits are per application, shared by all its athletes. Default overall limit
  200 requests / 15 minutes and 2,000 / day; default read ("non-upload") limit 100 / 15 minutes
  and 1,000 / day. The 15-minute windows reset at :00, :15, :30 and :45 (UTC clock), the daily
  one at midnight UTC. All requests count, refused ones included, so requests over the short
  limit still count toward the daily one. Over a limit: HTTP 429 with `{"message": "Rate Limit
  Exceeded", "errors": [{"resource": "Application", "field": "rate limit", "code":
  "exceeded"}]}`. Every API response (4xx, 429 and 5xx the API produces included) carries
  `X-RateLimit-Limit: "200,2000"`, `X-RateLimit-Usage: "u15,uday"`, `X-ReadRateLimit-Limit:
  "100,1000"` and `X-ReadRateLimit-Usage: "r15,rday"` (each "15-minute,daily"). GET requests
  count against the overall and the read limits, other API requests only against the overall
  ones. The OAuth endpoint is not metered and carries no such headers.
* "Authentication": `POST /oauth/token` (form-encoded; JSON and query parameters are accepted
  too) with `client_id`, `client_secret` and `grant_type` = `authorization_code` (with `code`)
  or `refresh_token` (with `refresh_token`). It answers `{"token_type": "Bearer",
  "access_token", "expires_at", "expires_in", "refresh_token"}`, plus the summary `athlete`
  for a code. Access tokens last six hours. A refresh returns a new access token and may return
  a new refresh token, after which the old one no longer works. Codes are single use. A wrong
  client id or secret is a 401 `{"message": "Bad Request", "errors": [{"resource":
  "Application", "field": "client_secret" (or "client_id"), "code": "invalid"}]}`; an unknown
  refresh token a 400 with resource "RefreshToken", field "refresh_token", code "invalid"; a bad
  code a 400 with resource "AuthorizationCode", field "code"; a missing parameter a 400 with code
  "missing". `POST /oauth/deauthorize` revokes the application's access for the athlete.
* Errors of the API: an invalid, expired or revoked access token is a 401 `{"message":
  "Authorization Error", "errors": [{"resource": "Athlete", "field": "access_token", "code":
  "invalid"}]}`; a token without an activity scope listing activities is a 401 with field
  "activity:read_permission", code "missing"; an unknown path is a 404 `{"message": "Record Not
  Found", "errors": [{"resource": "resource", "field": "path", "code": "invalid"}]}`.
* "Webhook Events" are not implemented.

JSON answers have `Content-Type: application/json; charset=utf-8`, and every answer a `Date`
header from the sandbox clock (`now()`, settable), which also drives the rate-limit windows and
token expiry: a client that aligns its windows and expiry on `Date` is tested for real.

Beyond Strava, `StravaSandbox` keeps the ground truth (`activities()`), a request log, and
fault injection (`Faults`: latency, 5xx, dropped connections, truncated bodies, malformed pages
and activities, mid-sync revocation, outages, activities added and deleted between pages).
Its Python API is mirrored over HTTP under `/_sandbox/` for a sandbox run as its own process.
Gateway faults (dropped connections, HTML 502/503 pages, outages) happen in front of the API:
they are not metered and carry no rate-limit headers; an injected 500 comes from the API.
"""

from __future__ import annotations

import copy
import hashlib
import heapq
import json
import math
import random
import re
import secrets
import threading
import time
from bisect import bisect_left, bisect_right, insort
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from sync_assets_sandbox.athletes import (
    DEFAULT_ID_START,
    SyntheticAthlete,
    athlete_profile,
    generate_activities,
    make_activity,
    synthetic_athlete,
)
from sync_assets_sandbox.push import PushSubscriptions

QUARTER_HOUR = 15 * 60
DAY = 86_400
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 200
JSON_TYPE = "application/json; charset=utf-8"
FIRST_ATHLETE_ID = 10_000_001
ACTIVITY_SCOPES = frozenset({"activity:read", "activity:read_all"})
SECRET_PARAMS = frozenset({"client_secret", "refresh_token", "code", "access_token"})
MAX_LOGGED_REQUESTS = 100_000
_INTEGER = re.compile(r"-?[0-9]+\Z")

# How `GET /athlete/activities` orders its answer (Strava documents none). The first three are
# behaviours the real service could have; the last two are faults no client may guess at.
LIST_ORDERS: dict[str, str] = {
    "oldest-first-with-after": "oldest first whenever `after` is given, else newest first",
    "newest-first-always": "newest first, whatever the bounds",
    "newest-first-when-bounded": "newest first with both `after` and `before` (and with "
    "neither); oldest first with `after` alone",
    "unordered": "fault: every page in a shuffled order",
    "flipping": "fault: pages alternate between oldest first and newest first",
}
DEFAULT_LIST_ORDER = "oldest-first-with-after"

# What a corrupted activity looks like in a list page (chosen per activity id).
CORRUPTIONS = (
    "negative distance",
    "moving_time is a string",
    "id missing",
    "start_date missing",
    "start_date is not a date",
    "distance is a string",
    "start_latlng out of range",
)


@dataclass
class RateLimits:
    """Per-application request limits; the read limits apply to GET requests only."""

    overall_15min: int = 200
    overall_daily: int = 2_000
    read_15min: int = 100
    read_daily: int = 1_000


@dataclass
class Faults:
    """Injected faults, all off by default. Change them with `StravaSandbox.set_faults()`.

    `*_next` counts are consumed as API requests arrive; `*_rate` faults draw from the
    sandbox's seeded RNG, so a given sequence of requests meets the same faults every run.
    """

    latency_seconds: float = 0.0  # added to every API and OAuth answer
    latency_jitter_seconds: float = 0.0  # +- uniformly around latency_seconds
    error_5xx_rate: float = 0.0
    error_5xx_next: int = 0  # answers cycle 500 (JSON, metered), 502, 503 (HTML gateway pages)
    drop_connection_rate: float = 0.0
    drop_connection_next: int = 0  # close the socket without answering
    truncate_body_next: int = 0  # full Content-Length, half the body, then close
    malformed_page_next: int = 0  # activity-list pages that are 200 with invalid JSON
    malformed_activity_rate: float = 0.0  # share of activities served corrupt (by id)
    malformed_activities: int = 0  # per athlete: this many activities are served corrupt
    # activity id -> the JSON value listed in its place (any value: a hostile record), while
    # the listing order stays that of the real activity
    served_payloads: dict[int, Any] = field(default_factory=dict)
    revoke_after_requests: dict[int, int] = field(default_factory=dict)  # athlete -> N more
    outage_after_requests: int | None = None  # after N more API requests, 503 until cleared
    mutate_between_pages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AthleteHandle:
    """Sandbox credentials of one athlete (fine to print: they only open the sandbox)."""

    athlete_id: int
    refresh_token: str
    authorization_code: str
    access_token: str
    expires_at: int
    scopes: str


@dataclass
class Response:
    """What the HTTP layer must send; `action` "drop" or "truncate" injects a network fault."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    action: str = "send"  # "send" | "drop" | "truncate"
    delay: float = 0.0  # seconds to wait before answering (latency fault)


@dataclass
class _Grant:
    athlete_id: int
    expires_at: int
    scopes: frozenset[str]


@dataclass
class _Athlete:
    model: SyntheticAthlete
    profile: dict[str, Any]
    scopes: str
    activities: dict[int, dict[str, Any]]
    index: list[tuple[int, int]]  # sorted (start epoch, id): the listing order
    version: int = 0  # bumped on every change: a cache key
    api_requests: int = 0  # authenticated API requests
    list_pages: int = 0  # activity-list pages answered with 200
    served: list[int] = field(default_factory=list)  # ids sent in list pages, most recent last
    revoked: bool = False

    @property
    def id(self) -> int:
        return self.model.athlete_id


@dataclass
class _Mutation:
    spec: dict[str, Any]
    athlete_id: int
    fire_at: int  # the athlete's `list_pages` count that triggers it


class SandboxError(ValueError):
    """A call the sandbox cannot honour (bad argument); HTTP control answers 400."""


class UnknownRecord(SandboxError, LookupError):
    """No such athlete or activity; HTTP control answers 404."""


def _epoch(iso: str) -> int:
    dt = datetime.fromisoformat(iso)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def _clone(value: Any) -> Any:
    """A deep copy of JSON-like data, much faster than `copy.deepcopy`."""
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def _dumps(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # lone surrogates: sent as \u escapes, as JSON allows
        return json.dumps(value, separators=(",", ":")).encode()


def _json(status: int, value: Any) -> Response:
    return Response(status, _dumps(value), [("Content-Type", JSON_TYPE)])


def _error(status: int, message: str, resource: str, fld: str, code: str) -> Response:
    return _json(
        status, {"message": message, "errors": [{"resource": resource, "field": fld, "code": code}]}
    )


def _unauthorized() -> Response:
    return _error(401, "Authorization Error", "Athlete", "access_token", "invalid")


def _not_found() -> Response:
    return _error(404, "Record Not Found", "resource", "path", "invalid")


_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
}


def _gateway_page(status: int) -> Response:
    """What a load balancer in front of an API sends: HTML, not the API's JSON."""
    title = f"{status} {_REASONS.get(status, 'Error')}"
    body = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()
    return Response(status, body, [("Content-Type", "text/html")])


def common_control(
    app: Any, method: str, parts: list[str], data: dict[str, Any]
) -> Response | None:
    """The control endpoints both sandboxes share: usage, clock and the request log."""
    if parts == ["usage"] and method == "GET":
        return _json(200, app.usage())
    if parts == ["usage"] and method == "DELETE":
        app.reset_usage()
        return _json(200, app.usage())
    if parts == ["clock"] and method == "GET":
        return _json(200, {"now": app.now()})
    if parts == ["clock"] and method == "POST":
        if "epoch" in data:
            app.set_clock(float(data["epoch"]))
        if "advance" in data:
            app.advance_clock(float(data["advance"]))
        return _json(200, {"now": app.now()})
    if parts == ["requests"] and method == "GET":
        with app._lock:
            return _json(200, list(app.requests))
    if parts == ["requests"] and method == "DELETE":
        app.clear_requests()
        return _json(200, {"cleared": True})
    return None


def checked_list_order(order: str) -> str:
    if order not in LIST_ORDERS:
        raise SandboxError(f"list_order must be one of {sorted(LIST_ORDERS)}, not {order!r}")
    return order


def _parse_query(query_string: str) -> dict[str, str]:
    parsed = parse_qs(query_string, keep_blank_values=True, errors="replace")
    return {k: v[-1] for k, v in parsed.items()}


def _redact(params: dict[str, str]) -> dict[str, str]:
    return {k: ("[redacted]" if k in SECRET_PARAMS else v) for k, v in params.items()}


def _corrupt(activity: dict[str, Any], kind: int) -> dict[str, Any]:
    """The damaged copy of an activity: each kind is something a client must quarantine."""
    bad = dict(activity)
    distance = bad.get("distance")
    distance = float(distance) if isinstance(distance, int | float) else 0.0
    if kind == 0:
        bad["distance"] = -round(abs(distance) + 1.0, 1)
    elif kind == 1:
        m = bad.get("moving_time")
        m = m if isinstance(m, int) else 0
        bad["moving_time"] = f"{m // 3600}:{m // 60 % 60:02d}:{m % 60:02d}"
    elif kind == 2:
        bad.pop("id", None)
    elif kind == 3:
        bad.pop("start_date", None)
    elif kind == 4:
        bad["start_date"] = "0000-00-00T00:00:00Z"
    elif kind == 5:
        bad["distance"] = f"{distance / 1000:.2f} km"
    else:
        bad["start_latlng"] = [123.45, 567.89]
    return bad


class StravaSandbox:
    """All the state of one sandboxed Strava application; thread-safe (one lock)."""

    def __init__(
        self,
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",
        seed: int = 0,
        token_lifetime_seconds: int = 21_600,
        rotate_refresh_tokens: bool = True,
        limits: RateLimits | None = None,
        list_order: str = DEFAULT_LIST_ORDER,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.seed = seed
        self.token_lifetime_seconds = token_lifetime_seconds
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.limits = limits or RateLimits()
        self.list_order = checked_list_order(list_order)
        self._lists_answered = 0  # list pages served: what "flipping" alternates on
        self.requests: list[dict[str, Any]] = []  # the request log, oldest first
        self.mutations: list[dict[str, Any]] = []  # what mutate_between_pages did
        self._lock = threading.RLock()
        self._offset = 0.0
        self._rng = random.Random(f"strava-sandbox:{seed}:faults")
        self._faults = Faults()
        self._athletes: dict[int, _Athlete] = {}
        self._next_athlete_id = FIRST_ATHLETE_ID
        self._next_activity_id = DEFAULT_ID_START
        self._access: dict[str, _Grant] = {}
        self._refresh: dict[str, int] = {}  # token -> athlete (insertion order: newest last)
        self._codes: dict[str, tuple[int, str]] = {}  # code -> (athlete, scopes)
        self._revoke_at: dict[int, int] = {}  # athlete -> api_requests count that revokes it
        self._mutations: list[_Mutation] = []
        self._outage_at: int | None = None  # API request number after which all is 503
        self._api_requests = 0  # all API requests ever received
        self._errors_injected = 0  # cycles 500, 502, 503
        self._corrupt_cache: dict[tuple[int, int, int], set[int]] = {}
        self._quarter = self._day = -1
        self._used = {"overall_15min": 0, "overall_daily": 0, "read_15min": 0, "read_daily": 0}
        self.push = PushSubscriptions(self.now)  # Strava's webhook events

    # -- clock -----------------------------------------------------------------------------
    def now(self) -> float:
        """Sandbox time (epoch seconds): the wall clock plus a settable offset."""
        return time.time() + self._offset

    def set_clock(self, epoch: float) -> None:
        """Make `now()` equal `epoch` from this moment on; it keeps running in real time."""
        with self._lock:
            self._offset = epoch - time.time()

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    # -- athletes and ground truth --------------------------------------------------------
    def _athlete(self, athlete_id: int) -> _Athlete:
        try:
            return self._athletes[int(athlete_id)]
        except (KeyError, ValueError, TypeError):
            raise UnknownRecord(f"no athlete {athlete_id!r}") from None

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

    def _new_activity_id(self) -> int:
        activity_id = self._next_activity_id
        self._next_activity_id += 1 + self._rng.randrange(3)
        return activity_id

    def add_athlete(
        self,
        n_activities: int = 100,
        *,
        seed: int | None = None,
        scopes: str = "read,activity:read_all",
        years: float | None = None,
        athlete_id: int | None = None,
    ) -> AthleteHandle:
        """A connected athlete whose history ends now; `seed` defaults to the sandbox's."""
        if n_activities < 0:
            raise SandboxError("n_activities must be >= 0")
        with self._lock:
            aid = self._next_athlete_id if athlete_id is None else int(athlete_id)
            if aid in self._athletes or aid <= 0:
                raise SandboxError(f"athlete id {aid} is taken or invalid")
            self._next_athlete_id = max(self._next_athlete_id, aid) + 1
            gen_seed = self.seed if seed is None else int(seed)
            now = datetime.fromtimestamp(int(self.now()), UTC)
            acts = generate_activities(
                gen_seed, aid, n_activities, end=now, years=years, id_start=self._next_activity_id
            )
            if acts:
                self._next_activity_id = acts[-1]["id"] + 1 + self._rng.randrange(1, 50)
            model = synthetic_athlete(gen_seed, aid)
            first = _epoch(acts[0]["start_date"]) if acts else int(self.now())
            profile = athlete_profile(
                model,
                created_at=datetime.fromtimestamp(first - 86_400 * (3 + aid % 90), UTC),
                updated_at=now,
            )
            athlete = _Athlete(
                model=model,
                profile=profile,
                scopes=scopes,
                activities={a["id"]: a for a in acts},
                index=[(_epoch(a["start_date"]), a["id"]) for a in acts],
            )
            athlete.index.sort()
            self._athletes[aid] = athlete
            refresh = self._issue_refresh(aid)
            code = self.authorize(aid)
            access, expires_at = self._issue_access(aid, scopes)
            return AthleteHandle(aid, refresh, code, access, expires_at, scopes)

    def authorize(self, athlete_id: int, scopes: str | None = None) -> str:
        """A new single-use authorization code, as if the athlete clicked "Authorize" again."""
        with self._lock:
            athlete = self._athlete(athlete_id)
            if scopes is not None:
                athlete.scopes = scopes
            athlete.revoked = False
            code = secrets.token_hex(20)
            self._codes[code] = (athlete.id, athlete.scopes)
            return code

    def athletes(self) -> list[dict[str, Any]]:
        """Every athlete with its newest refresh token and unused code (sandbox credentials)."""
        with self._lock:
            out = []
            for aid, athlete in self._athletes.items():
                refresh = [t for t, a in self._refresh.items() if a == aid]
                codes = [c for c, (a, _) in self._codes.items() if a == aid]
                out.append(
                    {
                        "athlete_id": aid,
                        "refresh_token": refresh[-1] if refresh else None,
                        "authorization_code": codes[-1] if codes else None,
                        "activities": len(athlete.activities),
                        "scopes": athlete.scopes,
                        "revoked": athlete.revoked,
                    }
                )
            return out

    def activities(self, athlete_id: int) -> list[dict[str, Any]]:
        """Ground truth (deep copies), oldest first: by start_date, then id."""
        with self._lock:
            athlete = self._athlete(athlete_id)
            return [_clone(athlete.activities[i]) for _, i in athlete.index]

    def add_activity(
        self,
        athlete_id: int,
        activity: dict[str, Any] | None = None,
        *,
        start_date: datetime | None = None,
    ) -> dict[str, Any]:
        """Add (or replace, same id) an activity; None generates a plausible new upload.

        A given activity without an `id` gets a new one (ids grow with upload time, as on
        Strava, even for a backdated start); it must have an ISO `start_date` unless the
        `start_date` argument is given.
        """
        with self._lock:
            athlete = self._athlete(athlete_id)
            if activity is None:
                start = start_date or datetime.fromtimestamp(int(self.now()) - 7_200, UTC)
                new = make_activity(
                    athlete.model, self._rng, activity_id=self._new_activity_id(), start=start
                )
            else:
                new = _clone(activity)
                if start_date is not None:
                    if start_date.tzinfo is None:
                        start_date = start_date.replace(tzinfo=UTC)
                    new["start_date"] = start_date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                if not isinstance(new.get("start_date"), str):
                    raise SandboxError("an activity needs an ISO 8601 start_date")
                try:
                    _epoch(new["start_date"])
                except ValueError:
                    raise SandboxError(f"bad start_date {new['start_date']!r}") from None
                if not isinstance(new.get("id"), int):
                    new["id"] = self._new_activity_id()
                new.setdefault("athlete", {"id": athlete.id, "resource_state": 1})
                new.setdefault("private", False)
                self._next_activity_id = max(self._next_activity_id, new["id"] + 1)
            self._store(athlete, new)
            self.push.emit("activity", new["id"], "create", athlete.id)
            return _clone(new)

    def update_activity(self, athlete_id: int, activity_id: int, **changes: Any) -> dict[str, Any]:
        """Edit an activity in place (a rename, a privacy change...), as athletes do."""
        with self._lock:
            athlete = self._athlete(athlete_id)
            if activity_id not in athlete.activities:
                raise UnknownRecord(f"athlete {athlete.id} has no activity {activity_id}")
            updated = {**athlete.activities[activity_id], **_clone(changes), "id": activity_id}
            if "start_date" in changes:
                _epoch(updated["start_date"])
            self._store(athlete, updated)
            # Strava's `updates` name what changed: title, type, private (as strings).
            names = {"name": "title", "sport_type": "type", "type": "type", "private": "private"}
            updates = {
                names[k]: str(v).lower() if isinstance(v, bool) else str(v)
                for k, v in changes.items()
                if k in names
            }
            self.push.emit("activity", activity_id, "update", athlete.id, updates)
            return _clone(updated)

    def _store(self, athlete: _Athlete, activity: dict[str, Any]) -> None:
        if activity["id"] in athlete.activities:
            self._unindex(athlete, activity["id"])
        athlete.activities[activity["id"]] = activity
        insort(athlete.index, (_epoch(activity["start_date"]), activity["id"]))
        athlete.version += 1

    def _unindex(self, athlete: _Athlete, activity_id: int) -> None:
        key = (_epoch(athlete.activities[activity_id]["start_date"]), activity_id)
        i = bisect_left(athlete.index, key)
        if i < len(athlete.index) and athlete.index[i] == key:
            del athlete.index[i]

    def delete_activity(self, athlete_id: int, activity_id: int) -> None:
        with self._lock:
            athlete = self._athlete(athlete_id)
            if activity_id not in athlete.activities:
                raise UnknownRecord(f"athlete {athlete.id} has no activity {activity_id}")
            self._unindex(athlete, activity_id)
            del athlete.activities[activity_id]
            athlete.version += 1
            self.push.emit("activity", activity_id, "delete", athlete.id)

    def revoke(self, athlete_id: int) -> None:
        """Deauthorize the application for this athlete: every token and code stops working."""
        with self._lock:
            athlete = self._athlete(athlete_id)
            athlete.revoked = True
            aid = athlete.id
            self._access = {t: g for t, g in self._access.items() if g.athlete_id != aid}
            self._refresh = {t: a for t, a in self._refresh.items() if a != aid}
            self._codes = {c: v for c, v in self._codes.items() if v[0] != aid}
            self.push.emit("athlete", aid, "update", aid, {"authorized": "false"})

    # -- limits and usage -----------------------------------------------------------------
    def set_limits(self, limits: RateLimits) -> None:
        with self._lock:
            self.limits = limits

    def settings(self) -> dict[str, Any]:
        """Behaviours Strava leaves undocumented, as this sandbox plays them now."""
        with self._lock:
            return {"list_order": self.list_order, "list_orders": dict(LIST_ORDERS)}

    def set_list_order(self, order: str) -> None:
        """How activity lists are ordered from now on (one of `LIST_ORDERS`)."""
        with self._lock:
            self.list_order = checked_list_order(order)

    def _roll_windows(self) -> None:
        now = self.now()
        quarter, day = int(now // QUARTER_HOUR), int(now // DAY)
        if day != self._day:
            self._day = day
            self._used["overall_daily"] = self._used["read_daily"] = 0
        if quarter != self._quarter:
            self._quarter = quarter
            self._used["overall_15min"] = self._used["read_15min"] = 0

    def usage(self) -> dict[str, Any]:
        """Current usage and limits, and when the windows reset (epoch seconds)."""
        with self._lock:
            self._roll_windows()
            u = self._used
            return {
                "usage_15min": u["overall_15min"],
                "usage_daily": u["overall_daily"],
                "read_usage_15min": u["read_15min"],
                "read_usage_daily": u["read_daily"],
                **{f"limit_{k}": v for k, v in asdict(self.limits).items()},
                "window_15min_resets_at": (self._quarter + 1) * QUARTER_HOUR,
                "window_daily_resets_at": (self._day + 1) * DAY,
            }

    def reset_usage(self) -> None:
        with self._lock:
            for key in self._used:
                self._used[key] = 0

    def _meter(self, is_read: bool) -> bool:
        """Count one API request; True when it is over a limit (and must be refused)."""
        self._roll_windows()
        u, lim = self._used, self.limits
        u["overall_15min"] += 1
        u["overall_daily"] += 1
        if is_read:
            u["read_15min"] += 1
            u["read_daily"] += 1
        over = u["overall_15min"] > lim.overall_15min or u["overall_daily"] > lim.overall_daily
        if is_read:
            over = over or u["read_15min"] > lim.read_15min or u["read_daily"] > lim.read_daily
        return over

    def _rate_headers(self) -> list[tuple[str, str]]:
        u, lim = self._used, self.limits
        return [
            ("X-RateLimit-Limit", f"{lim.overall_15min},{lim.overall_daily}"),
            ("X-RateLimit-Usage", f"{u['overall_15min']},{u['overall_daily']}"),
            ("X-ReadRateLimit-Limit", f"{lim.read_15min},{lim.read_daily}"),
            ("X-ReadRateLimit-Usage", f"{u['read_15min']},{u['read_daily']}"),
        ]

    # -- faults ---------------------------------------------------------------------------
    @property
    def faults(self) -> Faults:
        """A snapshot of the current faults (change them with `set_faults`)."""
        with self._lock:
            return copy.deepcopy(self._faults)

    def set_faults(self, **changes: Any) -> Faults:
        """Change some faults, leaving the others as they are. Counts start from now."""
        with self._lock:
            known = {f.name for f in fields(Faults)}
            unknown = sorted(set(changes) - known)
            if unknown:
                raise SandboxError(f"unknown faults: {unknown}")
            for name, value in changes.items():
                setattr(self._faults, name, self._checked_fault(name, value))
            return copy.deepcopy(self._faults)

    def _checked_fault(self, name: str, value: Any) -> Any:
        """Validate one fault value and arm it (counts are relative to the moment it is set)."""
        try:
            if name == "revoke_after_requests":
                value = {int(k): int(v) for k, v in dict(value).items()}
                if any(n < 0 for n in value.values()):
                    raise SandboxError("revoke_after_requests counts must be >= 0")
                self._revoke_at = {
                    aid: self._athlete(aid).api_requests + n for aid, n in value.items()
                }
                return value
            if name == "mutate_between_pages":
                specs = [self._checked_mutation(dict(spec)) for spec in value]
                self._mutations = []
                for spec in specs:
                    pages = self._athlete(spec["athlete_id"]).list_pages
                    self._mutations.append(
                        _Mutation(spec, spec["athlete_id"], pages + spec["after_page"])
                    )
                return specs
            if name == "served_payloads":
                return {int(k): _clone(v) for k, v in dict(value).items()}
            if name == "outage_after_requests":
                if value is None:
                    self._outage_at = None
                    return None
                value = int(value)
                if value < 0:
                    raise SandboxError("outage_after_requests must be >= 0")
                self._outage_at = self._api_requests + value
                return value
            if name.endswith(("_rate", "_seconds")):
                value = float(value)
                if value < 0 or (name.endswith("_rate") and value > 1):
                    raise SandboxError(f"{name} must be in [0, 1] (rates) or >= 0 (seconds)")
                return value
            value = int(value)
            if value < 0:
                raise SandboxError(f"{name} must be >= 0")
            return value
        except (TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, SandboxError):
                raise
            raise SandboxError(f"bad value for {name}: {value!r}") from None

    def _checked_mutation(self, spec: dict[str, Any]) -> dict[str, Any]:
        out = {
            "athlete_id": int(spec["athlete_id"]),
            "after_page": int(spec.get("after_page", 1)),
            "add": int(spec.get("add", 0)),
            "delete": int(spec.get("delete", 0)),
            "where": str(spec.get("where", "newest")),
        }
        if out["where"] not in ("newest", "inside", "both"):
            raise SandboxError('mutation "where" must be "newest", "inside" or "both"')
        if out["after_page"] < 1 or out["add"] < 0 or out["delete"] < 0:
            raise SandboxError("mutation after_page must be >= 1, add and delete >= 0")
        self._athlete(out["athlete_id"])
        return out

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = Faults()
            self._revoke_at.clear()
            self._mutations.clear()
            self._outage_at = None

    def _latency(self) -> float:
        f = self._faults
        if not f.latency_seconds and not f.latency_jitter_seconds:
            return 0.0
        jitter = self._rng.uniform(-1, 1) * f.latency_jitter_seconds
        return max(0.0, f.latency_seconds + jitter)

    def _unit(self, tag: str, activity_id: Any) -> float:
        """A stable pseudo-random number in [0, 1) per (sandbox seed, activity)."""
        digest = hashlib.blake2b(f"{self.seed}:{tag}:{activity_id}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "big") / 2**64

    def _corrupt_set(self, athlete: _Athlete) -> set[int]:
        k = self._faults.malformed_activities
        if k <= 0:
            return set()
        key = (athlete.id, athlete.version, k)
        if key not in self._corrupt_cache:
            if len(self._corrupt_cache) > 64:
                self._corrupt_cache.clear()
            picked = heapq.nsmallest(k, athlete.activities, key=lambda i: self._unit("pick", i))
            self._corrupt_cache[key] = set(picked)
        return self._corrupt_cache[key]

    def _corruption(self, activity_id: int, chosen: set[int]) -> int | None:
        rate = self._faults.malformed_activity_rate
        if activity_id in chosen or (rate and self._unit("rate", activity_id) < rate):
            return int(self._unit("kind", activity_id) * len(CORRUPTIONS))
        return None

    def malformed_activity_ids(self, athlete_id: int) -> dict[int, str]:
        """Which activities the current faults serve corrupt, and how (id -> description)."""
        with self._lock:
            athlete = self._athlete(athlete_id)
            chosen = self._corrupt_set(athlete)
            out = {}
            for aid in athlete.activities:
                kind = self._corruption(aid, chosen)
                if kind is not None:
                    out[aid] = CORRUPTIONS[kind]
            return out

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

    # -- API ------------------------------------------------------------------------------
    @staticmethod
    def _bearer(headers: dict[str, str]) -> str:
        scheme, _, token = headers.get("authorization", "").strip().partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""

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

    # -- mutations between pages ----------------------------------------------------------
    def _run_mutations(self, athlete: _Athlete) -> None:
        for mutation in list(self._mutations):
            if mutation.athlete_id != athlete.id or athlete.list_pages != mutation.fire_at:
                continue
            self._mutations.remove(mutation)
            pending = self._faults.mutate_between_pages
            self._faults.mutate_between_pages = [s for s in pending if s is not mutation.spec]
            self._mutate(athlete, mutation.spec)

    def _mutate(self, athlete: _Athlete, spec: dict[str, Any]) -> None:
        """Delete among what was already served, add at the newest end and/or inside."""
        rng = self._rng
        served = [i for i in dict.fromkeys(athlete.served) if i in athlete.activities]
        victims = rng.sample(served, min(spec["delete"], len(served)))
        oldest = [i for _, i in athlete.index if i not in victims]
        victims += oldest[: spec["delete"] - len(victims)]
        deleted = []
        for activity_id in victims:
            deleted.append(_clone(athlete.activities[activity_id]))
            self._unindex(athlete, activity_id)
            del athlete.activities[activity_id]
        added = []
        now = int(self.now())
        for n in range(spec["add"]):
            where = spec["where"] if spec["where"] != "both" else ("newest", "inside")[n % 2]
            first = athlete.index[0][0] if athlete.index else now - DAY
            last = athlete.index[-1][0] if athlete.index else now - 7_200
            if where == "inside" and last - first > 2:
                start = rng.randrange(first + 1, last)
            else:
                start = max(last + 1, now - rng.randrange(600, 3_600))
            new = make_activity(
                athlete.model, rng, activity_id=self._new_activity_id(), start=start
            )
            athlete.activities[new["id"]] = new
            insort(athlete.index, (start, new["id"]))
            added.append(_clone(new))
        athlete.version += 1
        for activity in deleted:  # Strava tells a push subscriber about each change
            self.push.emit("activity", activity["id"], "delete", athlete.id)
        for activity in added:
            self.push.emit("activity", activity["id"], "create", athlete.id)
        self.mutations.append(
            {
                "athlete_id": athlete.id,
                "after_page": spec["after_page"],
                "where": spec["where"],
                "time": self.now(),
                "added": [a["id"] for a in added],
                "deleted": [a["id"] for a in deleted],
                "added_activities": added,
                "deleted_activities": deleted,
            }
        )

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

    # -- control API (/_sandbox/...) ------------------------------------------------------
    def _control(self, method: str, path: str, query: dict[str, str], body: bytes) -> Response:
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            return _json(400, {"message": "the body is not JSON"})
        if not isinstance(data, dict):
            return _json(400, {"message": "the body must be a JSON object"})
        parts = path.strip("/").split("/")[1:]
        try:
            return self._control_route(method, parts, data)
        except SandboxError as exc:
            return _json(404 if isinstance(exc, UnknownRecord) else 400, {"message": str(exc)})
        except (KeyError, ValueError, TypeError) as exc:
            return _json(400, {"message": f"{type(exc).__name__}: {exc}"})

    def _control_route(self, method: str, parts: list[str], data: dict[str, Any]) -> Response:
        head = parts[0] if parts else ""
        if head == "athletes":
            return self._control_athletes(method, parts[1:], data)
        if parts == ["faults"] and method == "GET":
            return _json(200, asdict(self.faults))
        if parts == ["faults"] and method in ("PUT", "PATCH", "POST"):
            return _json(200, asdict(self.set_faults(**data)))
        if parts == ["faults"] and method == "DELETE":
            self.clear_faults()
            return _json(200, asdict(self.faults))
        if parts == ["settings"] and method == "GET":
            return _json(200, self.settings())
        if parts == ["settings"] and method in ("PUT", "PATCH", "POST"):
            unknown = sorted(set(data) - {"list_order"})
            if unknown:
                raise SandboxError(f"unknown settings: {unknown}")
            if "list_order" in data:
                self.set_list_order(str(data["list_order"]))
            return _json(200, self.settings())
        if parts == ["limits"] and method == "GET":
            return _json(200, asdict(self.limits))
        if parts == ["limits"] and method in ("PUT", "PATCH", "POST"):
            self.set_limits(RateLimits(**{**asdict(self.limits), **data}))
            return _json(200, asdict(self.limits))
        common = common_control(self, method, parts, data)
        if common is not None:
            return common
        if parts == ["mutations"] and method == "GET":
            with self._lock:
                return _json(200, list(self.mutations))
        return _json(404, {"message": f"no control endpoint {method} /_sandbox/{'/'.join(parts)}"})

    def _control_athletes(self, method: str, rest: list[str], data: dict[str, Any]) -> Response:
        if not rest:
            if method == "GET":
                return _json(200, self.athletes())
            if method == "POST":
                handle = self.add_athlete(
                    int(data.get("n_activities", 100)),
                    seed=None if data.get("seed") is None else int(data["seed"]),
                    scopes=str(data.get("scopes", "read,activity:read_all")),
                    years=None if data.get("years") is None else float(data["years"]),
                    athlete_id=None if data.get("athlete_id") is None else int(data["athlete_id"]),
                )
                return _json(201, asdict(handle))
        elif not rest[0].isdigit():
            raise UnknownRecord(f"no athlete {rest[0]!r}")
        else:
            aid = int(rest[0])
            tail = rest[1:]
            if tail == [] and method == "GET":
                self._athlete(aid)
                return _json(200, next(a for a in self.athletes() if a["athlete_id"] == aid))
            if tail == ["revoke"] and method == "POST":
                self.revoke(aid)
                return _json(200, {"revoked": aid})
            if tail == ["authorize"] and method == "POST":
                code = self.authorize(aid, data.get("scopes"))
                return _json(201, {"athlete_id": aid, "authorization_code": code})
            if tail == ["activities"] and method == "GET":
                return _json(200, self.activities(aid))
            if tail == ["activities"] and method == "POST":
                return _json(201, self._control_add(aid, data))
            if tail == ["malformed"] and method == "GET":
                return _json(200, {str(k): v for k, v in self.malformed_activity_ids(aid).items()})
            if len(tail) == 2 and tail[0] == "activities" and tail[1].isdigit():
                if method == "DELETE":
                    self.delete_activity(aid, int(tail[1]))
                    return _json(200, {"deleted": int(tail[1])})
                if method in ("PUT", "PATCH"):
                    return _json(200, self.update_activity(aid, int(tail[1]), **data))
        return _json(404, {"message": f"no control endpoint {method} /_sandbox/athletes/..."})

    def _control_add(self, athlete_id: int, data: dict[str, Any]) -> dict[str, Any]:
        start = data.get("start_date")
        start_dt = None
        if start is not None:
            start_dt = datetime.fromisoformat(str(start))
        if set(data) <= {"start_date"}:  # nothing but (maybe) a date: generate one
            return self.add_activity(athlete_id, start_date=start_dt)
        return self.add_activity(athlete_id, data)
