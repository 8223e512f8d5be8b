"""Fault injection of the Strava sandbox: `Faults`, corrupt activities, revocations, outages
and activities added and deleted between pages.
"""

from __future__ import annotations

import copy
import hashlib
import heapq
from bisect import insort
from dataclasses import dataclass, field, fields
from typing import Any

from sync_assets_sandbox.athletes import (
    make_activity,
)
from sync_assets_sandbox.strava.common import DAY, SandboxError, _Athlete, _clone

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
    # after N more API requests, each answer is computed but held (not sent) until this is
    # set to None or the faults cleared: a sync stopped mid-run, at a known request
    hold_after_requests: int | None = None
    mutate_between_pages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Mutation:
    spec: dict[str, Any]
    athlete_id: int
    fire_at: int  # the athlete's `list_pages` count that triggers it


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


class FaultMixin:
    """The fault-injection part of `StravaSandbox` (its state is set up by `SandboxState`)."""

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
            if name == "hold_after_requests":
                if value is None:
                    self._hold_at = None
                    return None
                value = int(value)
                if value < 0:
                    raise SandboxError("hold_after_requests must be >= 0")
                self._hold_at = self._api_requests + value
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
            self._hold_at = None

    def holding(self) -> bool:
        """Whether held answers must still wait (`Faults.hold_after_requests`)."""
        return self._hold_at is not None

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
