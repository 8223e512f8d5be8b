"""Strava's app-wide request budget, learnt from its response headers.

Strava counts requests per *application* (all athletes together) in two windows: 15 minutes,
reset at :00/:15/:30/:45, and a day, reset at midnight UTC. Every response reports the usage in
`X-RateLimit-Usage` / `X-ReadRateLimit-Usage` ("15-minute,daily") against the limits in
`X-RateLimit-Limit` / `X-ReadRateLimit-Limit`. `RateLimitBudget` keeps the last known numbers,
counts the requests it lets through in between, and refuses to send one the window cannot take:
it sleeps when the window resets soon and raises a retryable `RateLimitError` otherwise.

Windows are computed on the *server's* clock (estimated from the `Date` header), since that is
the clock Strava resets on; a skewed local clock therefore cannot cause a 429.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from sync_assets.core.errors import RateLimitError

QUARTER = 15 * 60
DAY = 86_400
# Strava's defaults for a new application: used until the first response says otherwise.
DEFAULT_LIMITS = (200, 2_000)
DEFAULT_READ_LIMITS = (100, 1_000)
# How long after its `Date` a response may still be observed (its download, a busy process):
# a stored window starting later than that is in the server's future.
IN_FLIGHT_SECONDS = 60.0
NEVER = 2**62  # a window number no clock reaches: "do not move the row back"


def window_15(t: float) -> int:
    return int(t // QUARTER)


def window_day(t: float) -> int:
    return int(t // DAY)


def _pair(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    try:
        a, b = (int(x.strip()) for x in value.split(","))
    except ValueError:
        return None
    return a, b


@dataclass
class Counter:
    """Usage in one class of requests (all, or read) for the current windows."""

    limits: tuple[int, int]
    usage_15: int = 0
    usage_day: int = 0

    def fits(self) -> bool:
        return self.usage_15 < self.limits[0] and self.usage_day < self.limits[1]

    def daily_spent(self) -> bool:
        return self.usage_day >= self.limits[1]


@dataclass
class BudgetState:
    overall: Counter = field(default_factory=lambda: Counter(DEFAULT_LIMITS))
    read: Counter = field(default_factory=lambda: Counter(DEFAULT_READ_LIMITS))
    window_15: int = 0
    window_day: int = 0
    exhausted_until: float = 0.0  # set by a 429: nothing is sent before this server time


class RateLimitBudget:
    """Thread-safe, header-driven budget for one Strava application."""

    def __init__(
        self,
        *,
        max_wait_seconds: float = 900.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        reset_margin_seconds: float = 1.0,
    ) -> None:
        self.max_wait_seconds = max_wait_seconds
        self._clock = clock
        self._sleep = sleep
        self._margin = reset_margin_seconds
        self._lock = threading.Lock()
        self._offset = 0.0  # server clock - local clock
        self._state = BudgetState()
        self.waits = 0
        self.waited_seconds = 0.0

    # -- clock ---------------------------------------------------------------------------
    def server_now(self) -> float:
        return self._clock() + self._offset

    def _observe_date(self, headers: Mapping[str, str]) -> bool:
        """Learn the server's clock from `Date`; whether the response had a usable one."""
        raw = headers.get("date")
        if not raw:
            return False
        try:
            server = parsedate_to_datetime(raw).timestamp()
        except (TypeError, ValueError):
            return False
        # The header has one-second resolution: assume the middle of that second.
        self._offset = server + 0.5 - self._clock()
        return True

    # -- windows -------------------------------------------------------------------------
    def _roll(self, now: float) -> None:
        s = self._state
        w15, wday = window_15(now), window_day(now)
        if wday != s.window_day:
            s.overall.usage_day = s.read.usage_day = 0
        if w15 != s.window_15 or wday != s.window_day:
            s.overall.usage_15 = s.read.usage_15 = 0
        s.window_15, s.window_day = w15, wday

    def _reset_at(self, now: float, is_read: bool) -> float:
        s = self._state
        counters = [s.overall, s.read] if is_read else [s.overall]
        if any(c.daily_spent() for c in counters):
            return (window_day(now) + 1) * DAY
        return (window_15(now) + 1) * QUARTER

    # -- public --------------------------------------------------------------------------
    def acquire(self, *, is_read: bool = True) -> None:
        """Reserve one request, waiting for the window to reset if that is soon enough."""
        while True:
            with self._lock:
                now = self.server_now()
                self._roll(now)
                s = self._state
                counters = [s.overall, s.read] if is_read else [s.overall]
                if now >= s.exhausted_until and all(c.fits() for c in counters):
                    for c in counters:
                        c.usage_15 += 1
                        c.usage_day += 1
                    return
                reset = max(self._reset_at(now, is_read), s.exhausted_until)
            self._wait_for(reset, now, is_read)

    def _wait_for(self, reset: float, now: float, is_read: bool) -> None:
        """Sleep until `reset` (server time) if that is soon enough, else refuse: retryable."""
        wait = reset - now + self._margin
        if wait > self.max_wait_seconds:
            raise RateLimitError(
                f"Strava's app-wide {'read ' if is_read else ''}request budget is spent "
                f"until {datetime.fromtimestamp(reset, UTC).isoformat()} "
                f"(a {wait:.0f} s wait exceeds the {self.max_wait_seconds:.0f} s allowed)",
                retry_after=datetime.fromtimestamp(reset, UTC) + timedelta(seconds=1),
                details=self.usage(),
            )
        self.waits += 1
        self.waited_seconds += wait
        self._sleep(wait)

    def observe(self, headers: Mapping[str, str], *, status_code: int) -> None:
        """Take the authoritative numbers from a response."""
        with self._lock:
            self._observe_date(headers)
            now = self.server_now()
            self._roll(now)
            s = self._state
            for counter, lim_h, use_h in (
                (s.overall, "x-ratelimit-limit", "x-ratelimit-usage"),
                (s.read, "x-readratelimit-limit", "x-readratelimit-usage"),
            ):
                limits, usage = _pair(headers.get(lim_h)), _pair(headers.get(use_h))
                if limits:
                    counter.limits = limits
                if usage:
                    # Requests still in flight were counted locally but may not be in this
                    # response's numbers yet: never lower the estimate within a window.
                    counter.usage_15 = max(counter.usage_15, usage[0])
                    counter.usage_day = max(counter.usage_day, usage[1])
            if status_code == 429:
                # Whatever the numbers say, the server refused: wait for the next reset.
                s.exhausted_until = max(s.exhausted_until, self._reset_at(now, True))

    def usage(self) -> dict[str, int]:
        with self._lock:
            s = self._state
            return {
                "usage_15min": s.overall.usage_15,
                "limit_15min": s.overall.limits[0],
                "usage_daily": s.overall.usage_day,
                "limit_daily": s.overall.limits[1],
                "read_usage_15min": s.read.usage_15,
                "read_limit_15min": s.read.limits[0],
                "read_usage_daily": s.read.usage_day,
                "read_limit_daily": s.read.limits[1],
            }


class BudgetStore(Protocol):
    def budget_ensure(self, app: str) -> None: ...
    def budget_take(self, app: str, **window: Any) -> bool: ...
    def budget_observe(self, app: str, **observed: Any) -> None: ...
    def budget_state(self, app: str) -> dict[str, Any] | None: ...


class SharedRateLimitBudget(RateLimitBudget):
    """The same budget kept in the database, so that every run of the application, in any
    process or on any machine, takes each request from one row (atomically): 20 runs together
    cannot overrun a window that one run alone would respect.

    The server clock is still estimated per process (from `Date`); windows are numbered on it,
    and a process whose clock lags can never move a stored window back.
    """

    def __init__(self, store: BudgetStore, app: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store = store
        self.app = app
        self._synced = False
        store.budget_ensure(app)  # the app's row exists from here on: takes are one UPDATE

    def acquire(self, *, is_read: bool = True) -> None:
        state = None if self._synced else self._store.budget_state(self.app)
        while True:
            self._adopt_offset(state)
            now = self.server_now()
            window = {"now": now, "w15": window_15(now), "wday": window_day(now)}
            if self._store.budget_take(self.app, read=int(is_read), **window):
                return
            state = self._store.budget_state(self.app)
            self._adopt_offset(state)  # runs that answered since may have learnt the clock
            now = self.server_now()
            self._wait_for(self._reset_from(state, now, is_read), now, is_read)

    def _adopt_offset(self, state: dict[str, Any] | None) -> None:
        """Until this process has seen a `Date` itself, use the clock offset other runs learnt
        (read again each time it is refused): its requests then count, and its waits end, in
        the windows Strava counts in."""
        with self._lock:
            if state and not self._synced:
                self._offset = float(state["clock_offset"])

    @staticmethod
    def _reset_from(state: dict[str, Any] | None, now: float, is_read: bool) -> float:
        if not state:
            return now
        reset = (window_15(now) + 1) * QUARTER
        same_day = state["window_day"] >= window_day(now)
        spent = state["usage_day"] >= state["limit_day"] or (
            is_read and state["read_usage_day"] >= state["read_limit_day"]
        )
        if same_day and spent:
            reset = (window_day(now) + 1) * DAY
        return max(reset, float(state["exhausted_until"]))

    def observe(self, headers: Mapping[str, str], *, status_code: int) -> None:
        with self._lock:
            dated = self._observe_date(headers)
            self._synced = self._synced or dated
            offset = self._offset
        now = self.server_now()
        # With the server's own time at hand, a stored window later than it (allowing for the
        # time a response spends in flight) is one a fast clock opened: the row moves back.
        latest = now + IN_FLIGHT_SECONDS if dated else None
        limits = _pair(headers.get("x-ratelimit-limit")) or (None, None)
        usage = _pair(headers.get("x-ratelimit-usage")) or (None, None)
        read_limits = _pair(headers.get("x-readratelimit-limit")) or (None, None)
        read_usage = _pair(headers.get("x-readratelimit-usage")) or (None, None)
        exhausted = 0.0
        if status_code == 429:
            spent = usage[1] is not None and limits[1] is not None and usage[1] >= limits[1]
            exhausted = (window_day(now) + 1) * DAY if spent else (window_15(now) + 1) * QUARTER
        self._store.budget_observe(
            self.app,
            w15=window_15(now),
            wday=window_day(now),
            w15_latest=window_15(latest) if latest is not None else NEVER,
            wday_latest=window_day(latest) if latest is not None else NEVER,
            limit_15=limits[0],
            limit_day=limits[1],
            read_limit_15=read_limits[0],
            read_limit_day=read_limits[1],
            usage_15=usage[0],
            usage_day=usage[1],
            read_usage_15=read_usage[0],
            read_usage_day=read_usage[1],
            exhausted_until=exhausted,
            clock_offset=offset,
        )

    def usage(self) -> dict[str, int]:
        state = self._store.budget_state(self.app) or {}
        now = self.server_now()
        same_q = state.get("window_15", -1) >= window_15(now)
        same_d = state.get("window_day", -1) >= window_day(now)
        return {
            "usage_15min": state.get("usage_15", 0) if same_q else 0,
            "limit_15min": state.get("limit_15", DEFAULT_LIMITS[0]),
            "usage_daily": state.get("usage_day", 0) if same_d else 0,
            "limit_daily": state.get("limit_day", DEFAULT_LIMITS[1]),
            "read_usage_15min": state.get("read_usage_15", 0) if same_q else 0,
            "read_limit_15min": state.get("read_limit_15", DEFAULT_READ_LIMITS[0]),
            "read_usage_daily": state.get("read_usage_day", 0) if same_d else 0,
            "read_limit_daily": state.get("read_limit_day", DEFAULT_READ_LIMITS[1]),
        }


def app_key(api_url: str, client_id: str) -> str:
    """The budget row of one Strava application (no secret in it)."""
    return hashlib.sha256(f"{api_url}|{client_id}".encode()).hexdigest()[:32]


# `StravaResource(shared_budget=False)` and `sync-assets connect`: the budget is the Strava
# application's (its limits count every request of the app), so "one per process" is what this
# mode means: concurrent and back-to-back runs of one process take from it (the default mode
# keeps it in the database instead, `SharedRateLimitBudget`, for every process). Owning it per
# run would let two runs of one process each spend the whole window.
_shared: dict[tuple[str, str], RateLimitBudget] = {}
_shared_lock = threading.Lock()


def shared_budget(api_url: str, client_id: str, *, max_wait_seconds: float) -> RateLimitBudget:
    """One budget per Strava application in this process: every client of it takes from it."""
    with _shared_lock:
        budget = _shared.get((api_url, client_id))
        if budget is None:
            budget = _shared[(api_url, client_id)] = RateLimitBudget(
                max_wait_seconds=max_wait_seconds
            )
        budget.max_wait_seconds = max_wait_seconds
        return budget
