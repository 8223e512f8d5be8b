"""The state of one sandboxed Strava application: clock, athletes, tokens and the ground truth
of their activities, with the Python API that changes them.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from bisect import bisect_left, insort
from datetime import UTC, datetime
from typing import Any

from sync_assets_sandbox.athletes import (
    DEFAULT_ID_START,
    athlete_profile,
    generate_activities,
    make_activity,
    synthetic_athlete,
)
from sync_assets_sandbox.push import PushSubscriptions
from sync_assets_sandbox.strava.common import (
    DEFAULT_LIST_ORDER,
    FIRST_ATHLETE_ID,
    LIST_ORDERS,
    AthleteHandle,
    SandboxError,
    UnknownRecord,
    _Athlete,
    _clone,
    _epoch,
    _Grant,
    checked_list_order,
)
from sync_assets_sandbox.strava.faults import Faults, _Mutation
from sync_assets_sandbox.strava.limits import RateLimits


class SandboxState:
    """What `StravaSandbox` holds and its ground-truth operations; thread-safe (one lock).

    The other parts (`ApiMixin`, `OAuthMixin`, `RateLimitMixin`, `FaultMixin`,
    `ControlMixin`) work on this state."""

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
        self._hold_at: int | None = None  # API request number after which answers are held
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

    def settings(self) -> dict[str, Any]:
        """Behaviours Strava leaves undocumented, as this sandbox plays them now."""
        with self._lock:
            return {"list_order": self.list_order, "list_orders": dict(LIST_ORDERS)}

    def set_list_order(self, order: str) -> None:
        """How activity lists are ordered from now on (one of `LIST_ORDERS`)."""
        with self._lock:
            self.list_order = checked_list_order(order)
