"""Historical weather providers behind one interface: plan batched requests, fetch them.

* `OpenMeteoProvider` (default, no key): Open-Meteo's archive (`/v1/archive`). One request
  carries many locations, each with its own date range (`latitude`, `longitude`,
  `start_date`, `end_date` as comma lists); the free tier counts a request as
  `sum over locations of max(1, v/10 * max(1, days/14))` calls for `v` hourly variables and
  limits those to 600 a minute, 5,000 an hour and 10,000 a day (open-meteo/open-meteo,
  `calculateQueryWeight` and `RateLimiter`). The plan covers each cell's days with the date
  ranges of least weight (`cheapest_ranges`). Hours the archive has not published yet come
  back as nulls: they are reported as missing, never invented.
* `OpenWeatherMapProvider` (optional, API key): One Call 3.0 `timemachine`, one hour and place
  per call, but with visibility and UV index.

Answers come back as UTC days (`DayWeather`: 24 values per variable and the hours present), the
shape the cache keeps, parsed column by column; `fetch` gives the same hour by hour.

Both share the same plumbing: a weighted, sliding-window budget per API (`limits`), retries
with exponential backoff and jitter for network errors, 5xx and broken bodies (`tenacity`),
and a circuit breaker per API (`pybreaker`) so that an outage fails fast instead of burning
every run's time. Errors are classified `SyncError`s; the API key never reaches a log line,
an error message or a metric (URLs are never logged).
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any, Protocol

import httpx
import pybreaker
from limits import RateLimitItemPerDay, RateLimitItemPerHour, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from sync_assets.core.clients.http import LatencyStats, TimedTransport, response_json
from sync_assets.core.enrichment.wmo import condition
from sync_assets.core.errors import ErrorType, RateLimitError, SyncError, is_transient
from sync_assets.core.redaction import install as install_redaction

log = logging.getLogger(__name__)
install_redaction()  # httpx logs URLs, and OpenWeatherMap's key travels in the URL

OPEN_METEO_ARCHIVE_URL = "https://archive-api.open-meteo.com/v1/archive"
OPENWEATHERMAP_TIMEMACHINE_URL = "https://api.openweathermap.org/data/3.0/onecall/timemachine"
USER_AGENT = "sync_assets/0.1 (+https://github.com/sync-assets)"

DEFAULT_CELL_DEGREES = 0.1  # the cache's grid: ~11 km, finer than the reanalysis behind it
PENDING_DAYS = 30  # the archive publishes with a lag of days: missing hours this recent wait

Cell = tuple[float, float]  # (lat, lng) of a grid cell's centre, rounded to 2 decimals
HourKey = tuple[Cell, datetime]  # a cell and a UTC hour
DayKey = tuple[Cell, date]  # a cell and a UTC day: one row of the cache
HOURS = 24
ALL_HOURS = (1 << HOURS) - 1  # `DayWeather.present` of a whole day


@dataclass(frozen=True)
class HourlyWeather:
    """Weather at one place and UTC hour, in the units of `public.runs`; None = not provided."""

    temperature_celsius: float | None = None
    feels_like_celsius: float | None = None
    humidity_percent: float | None = None
    pressure_hpa: float | None = None
    wind_speed_mps: float | None = None
    wind_direction_degrees: float | None = None
    weather_code: int | None = None
    weather_condition: str | None = None
    visibility_meters: float | None = None
    uv_index: float | None = None


WEATHER_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(HourlyWeather))


def day_and_hour(moment: datetime) -> tuple[date, int] | None:
    """The UTC day and hour (0-23) of a whole UTC hour; None for any other moment (the cache
    holds whole hours only, as `hour_of` makes them)."""
    moment = moment.astimezone(UTC)
    if moment.minute or moment.second or moment.microsecond:
        return None
    return moment.date(), moment.hour


def hour_at(day: date, hour: int) -> datetime:
    return datetime.combine(day, clock_time(hour), UTC)


def _column(values: Sequence[Any], present: int) -> list[Any] | None:
    """One field's 24 values, None in the hours not present; None when no hour has a value."""
    if len(values) != HOURS:
        raise ValueError(f"{len(values)} hourly values for a day")
    if present != ALL_HOURS:
        values = [v if present >> h & 1 else None for h, v in enumerate(values)]
    return None if values.count(None) == HOURS else list(values)


@dataclass(frozen=True)
class DayWeather:
    """One cell's UTC day, as a provider answers it and the cache keeps it (one row a day).

    `values` maps every field of `HourlyWeather` to its 24 hourly values (index = UTC hour,
    None where that hour has no value), or to None when no hour of the day has one. `present`
    has bit h set when hour h has data: an hour the provider left out (a day the archive has
    only partly published) is absent, which a present hour whose values are null is not.
    """

    present: int
    values: Mapping[str, Sequence[Any] | None]

    @classmethod
    def of(cls, present: int, values: Mapping[str, Sequence[Any] | None]) -> DayWeather:
        """A day from 24 values per field (missing fields: no value), masked by `present`."""
        return cls(
            present,
            {
                f: None if values.get(f) is None else _column(values[f], present)
                for f in WEATHER_FIELDS
            },
        )

    @classmethod
    def of_hours(cls, hours: Mapping[int, HourlyWeather]) -> DayWeather:
        present = 0
        columns: dict[str, list[Any]] = {f: [None] * HOURS for f in WEATHER_FIELDS}
        for h, weather in hours.items():
            present |= 1 << h
            for f in WEATHER_FIELDS:
                columns[f][h] = getattr(weather, f)
        return cls.of(present, columns)

    @property
    def hours(self) -> int:
        """How many hours are present."""
        return self.present.bit_count()

    def hour(self, hour: int) -> HourlyWeather | None:
        """The weather of that hour (0-23), None when the day does not have it."""
        if not self.present >> hour & 1:
            return None
        return HourlyWeather(
            **{f: None if col is None else col[hour] for f, col in self.values.items()}
        )

    def filled_from(self, other: DayWeather) -> DayWeather:
        """This day with the hours it lacks taken from `other`; the hours it has are kept as
        they are (as an hour once cached always was)."""
        present = self.present | other.present
        columns = {}
        for f in WEATHER_FIELDS:
            mine, theirs = self.values[f], other.values[f]
            columns[f] = [
                (mine[h] if mine is not None else None)
                if self.present >> h & 1
                else (theirs[h] if theirs is not None else None)
                for h in range(HOURS)
            ]
        return DayWeather.of(present, columns)


def cache_rows(days: Mapping[DayKey, DayWeather]) -> dict[DayKey, DayWeather]:
    """The days that have hours, one per row of the cache: cells as it rounds them (to 2
    decimals), days that fall on one row merged."""
    rows: dict[DayKey, DayWeather] = {}
    for (cell, day_utc), day in days.items():
        key = ((round(cell[0], 2), round(cell[1], 2)), day_utc)
        if day.present:
            rows[key] = rows[key].filled_from(day) if key in rows else day
    return rows


@dataclass(frozen=True)
class LocationRange:
    cell: Cell
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass
class WeatherRequest:
    """One HTTP request: Open-Meteo's many (cell, date range), or OpenWeatherMap's one hour."""

    locations: list[LocationRange]
    weight: float
    hour: datetime | None = None


@dataclass
class ProviderStats:
    requests: int = 0  # logical requests (one per WeatherRequest)
    http_requests: int = 0  # attempts on the wire, retries included
    retries: int = 0
    http_429: int = 0
    weight: float = 0.0  # the provider's own accounting of what we spent
    locations: int = 0
    budget_waits: int = 0
    errors_by_type: dict[str, int] = field(default_factory=dict)
    latency: LatencyStats = field(default_factory=LatencyStats)


@dataclass(frozen=True)
class WeatherWait:
    """A wait of the weather step: how long, what for, until when (for the sync's session)."""

    seconds: float
    reason: str  # e.g. "Open-Meteo's per-minute budget"
    until: datetime

    def text(self) -> str:
        return f"waiting {self.seconds:.0f} s for {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds), "for": self.reason, "until": self.until.isoformat()}


# Called with a WeatherWait when the provider starts waiting, None when the wait is over.
WaitCallback = Callable[[WeatherWait | None], None]
# Shorter waits are not worth a note (nor a write to the session).
NOTED_WAIT_SECONDS = 1.0
WINDOW_NAMES = {"second": "per-second", "minute": "per-minute", "hour": "hourly", "day": "daily"}


class WeatherProvider(Protocol):
    name: str
    stats: ProviderStats

    def plan(self, needed: Mapping[Cell, Iterable[datetime]], today: date) -> list[WeatherRequest]:
        """Requests that cover every needed hour up to `today`, cheaply."""

    def fetch_days(self, request: WeatherRequest) -> dict[DayKey, DayWeather]:
        """The days the request covers that the provider answered, with the hours it has."""

    def fetch(self, request: WeatherRequest) -> dict[HourKey, HourlyWeather | None]:
        """Every hour the request covers; None where the provider has no data (yet)."""

    def close(self) -> None: ...


# -- unit conversions --------------------------------------------------------------------------
MPS_FACTORS = {"m/s": 1.0, "ms": 1.0, "km/h": 1 / 3.6, "kmh": 1 / 3.6, "mp/h": 0.44704}
MPS_FACTORS |= {"mph": 0.44704, "kn": 0.514444, "knots": 0.514444}
CELSIUS = ("°C", "celsius", "C")


def mps_factor(unit: str) -> float:
    if unit not in MPS_FACTORS:
        raise ValueError(f"unknown wind speed unit {unit!r}")
    return MPS_FACTORS[unit]


def to_mps(value: float | None, unit: str) -> float | None:
    """Wind speed in m/s from any unit Open-Meteo or OpenWeatherMap may answer in."""
    if value is None:
        return None
    return round(value * mps_factor(unit), 2)


def to_celsius(value: float | None, unit: str) -> float | None:
    if value is None:
        return None
    if unit in CELSIUS:
        return value
    if unit in ("°F", "fahrenheit", "F"):
        return round((value - 32) * 5 / 9, 2)
    if unit in ("K", "kelvin"):
        return round(value - 273.15, 2)
    raise ValueError(f"unknown temperature unit {unit!r}")


# -- shared budget and breaker -----------------------------------------------------------------
WEIGHT_SCALE = 100  # `limits` counts integers: budgets are kept in hundredths of a call


class WeightBudget:
    """Sliding windows (per minute, hour and day) over weighted calls, shared in a process.

    A sliding window never lets more through in any 60 s than the provider's fixed window
    allows, whenever its window starts. `acquire` waits when the wait is short; a longer one
    is a retryable `RateLimitError` with `retry_after`.
    """

    def __init__(self, key: str, minutely: int, hourly: int, daily: int) -> None:
        self.key = key
        self.items = [
            item
            for item, amount in (
                (RateLimitItemPerMinute(minutely * WEIGHT_SCALE), minutely),
                (RateLimitItemPerHour(hourly * WEIGHT_SCALE), hourly),
                (RateLimitItemPerDay(daily * WEIGHT_SCALE), daily),
            )
            if amount > 0
        ]
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._lock = threading.Lock()

    def acquire(
        self,
        weight: float,
        max_wait_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[float, str], None] | None = None,
    ) -> int:
        """Take `weight` calls from every window; returns how many times it waited.

        `on_wait(seconds, window)` is called before each sleep with the whole wait still ahead
        and the window that imposes it ('minute', 'hour', 'day')."""
        cost = max(1, math.ceil(weight * WEIGHT_SCALE))
        waits = 0
        deadline = time.monotonic() + max_wait_seconds
        while True:
            with self._lock:
                blocked = [i for i in self.items if not self._limiter.test(i, self.key, cost=cost)]
                if not blocked:
                    for item in self.items:
                        self._limiter.hit(item, self.key, cost=cost)
                    return waits
                resets = {
                    i.GRANULARITY.name: self._limiter.get_window_stats(i, self.key).reset_time
                    for i in blocked
                }
            window, reset = max(resets.items(), key=lambda wr: wr[1])
            wait = max(0.05, reset - time.time())
            if time.monotonic() + wait > deadline:
                raise RateLimitError(
                    f"the weather API budget ({self.key}) is spent",
                    retry_after=datetime.now(UTC) + timedelta(seconds=wait),
                )
            waits += 1
            if on_wait is not None:
                on_wait(wait, window)
            sleep(min(wait, 5.0))

    def usage(self) -> dict[str, tuple[float, int]]:
        """Calls spent and the limit, per window ('minute', 'hour', 'day'), in this process."""
        out: dict[str, tuple[float, int]] = {}
        with self._lock:
            for item in self.items:
                remaining = self._limiter.get_window_stats(item, self.key).remaining
                limit = item.amount // WEIGHT_SCALE
                out[item.GRANULARITY.name] = (round(limit - remaining / WEIGHT_SCALE, 2), limit)
        return out


# The provider's quota is the caller's (Open-Meteo counts per IP, OpenWeatherMap per key), not
# a run's: every run and step of this process takes from one budget per API URL and quota, so
# back-to-back or concurrent runs in one process (the CLI's demo, tests, threads) cannot
# overrun a window that one alone would respect. Kept per process for that reason (processes
# do not share it: a run launched in its own process starts from an empty window).
_budgets: dict[tuple[str, int, int, int], WeightBudget] = {}
_shared_lock = threading.Lock()


def shared_budget(key: str, minutely: int, hourly: int, daily: int) -> WeightBudget:
    with _shared_lock:
        k = (key, minutely, hourly, daily)
        if k not in _budgets:
            _budgets[k] = WeightBudget(key, minutely, hourly, daily)
        return _budgets[k]


def _not_a_fault(exc: BaseException) -> bool:
    """Client mistakes and spent budgets say nothing about the API's health."""
    return isinstance(exc, SyncError) and (not exc.retryable or exc.type == ErrorType.RATE_LIMIT)


def new_breaker(key: str, fail_max: int, reset_timeout: float) -> pybreaker.CircuitBreaker:
    """A circuit breaker around one weather API. Its owner decides how long it lives:
    `WeatherResource` keeps one per Dagster execution (a run, or a step's process), every
    provider of the execution going through it; a provider built on its own has its own."""
    return pybreaker.CircuitBreaker(
        fail_max=fail_max,
        reset_timeout=reset_timeout,
        exclude=[_not_a_fault],
        name=f"weather:{key}",
    )


def _number(value: Any, what: str) -> float | int | None:
    """A JSON number (or null) of an answer; anything else is a broken answer (ValueError)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} is {type(value).__name__}, not a number")
    return value


# What a body of an unexpected shape raises while it is parsed (all become INVALID_RESPONSE).
SHAPE_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError, ArithmeticError)


def _reason(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}"
    if isinstance(body, dict):
        return str(body.get("reason") or body.get("message") or f"HTTP {resp.status_code}")[:300]
    return f"HTTP {resp.status_code}"


class HttpWeatherProvider:
    """Budget, retries, breaker and error classification around one GET per request."""

    name = "weather"
    label = "the weather API"  # in the notes of a sync's progress

    def __init__(
        self,
        api_url: str,
        *,
        minutely: int,
        hourly: int,
        daily: int,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: tuple[float, float] = (0.5, 10.0),
        max_wait_seconds: float = 90.0,
        breaker_fail_max: int = 5,
        breaker_reset_seconds: float = 60.0,
        logger: logging.Logger | Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.Client | None = None,
        on_wait: WaitCallback | None = None,
        breaker: pybreaker.CircuitBreaker | None = None,
    ) -> None:
        self.api_url = api_url
        self.on_wait = on_wait  # told when a wait (budget, 429) starts and when it is over
        self._waiting: WeatherWait | None = None
        self.stats = ProviderStats()
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_wait_seconds = max_wait_seconds
        self.budget = shared_budget(api_url, minutely, hourly, daily)
        self.breaker = breaker or new_breaker(api_url, breaker_fail_max, breaker_reset_seconds)
        self._log = logger or log
        self._sleep = sleep
        self._http = http or httpx.Client(
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            transport=TimedTransport(self.stats.latency),
        )

    def close(self) -> None:
        self._http.close()

    def _count(self, err: SyncError) -> SyncError:
        key = err.type.value
        self.stats.errors_by_type[key] = self.stats.errors_by_type.get(key, 0) + 1
        return err

    def _params(self, request: WeatherRequest) -> dict[str, str]:
        raise NotImplementedError

    def _parse(self, request: WeatherRequest, body: Any) -> dict[DayKey, DayWeather]:
        raise NotImplementedError

    def _retry_after_429(self, resp: httpx.Response) -> float | None:
        """Seconds to wait before retrying a 429 here, or None when it is not worth waiting."""
        return None

    def _wait_started(self, seconds: float, reason: str) -> None:
        """Tell `on_wait` (once per wait: the budget's wait is slept in slices)."""
        if self.on_wait is None or seconds < NOTED_WAIT_SECONDS:
            return
        until = datetime.now(UTC) + timedelta(seconds=seconds)
        known = self._waiting
        if known and known.reason == reason and abs((known.until - until).total_seconds()) < 2:
            return
        self._waiting = WeatherWait(seconds, reason, until)
        self.on_wait(self._waiting)

    def _wait_over(self) -> None:
        if self._waiting is not None:
            self._waiting = None
            if self.on_wait is not None:
                self.on_wait(None)

    def _acquire(self, weight: float) -> int:
        def noted(seconds: float, window: str) -> None:
            name = WINDOW_NAMES.get(window, window)
            self._wait_started(seconds, f"{self.label}'s {name} budget")

        try:
            return self.budget.acquire(weight, self.max_wait_seconds, self._sleep, noted)
        finally:
            self._wait_over()

    def _get_once(self, request: WeatherRequest) -> Any:
        refusals = 0
        while True:
            self.stats.budget_waits += self._acquire(request.weight)
            self.stats.http_requests += 1
            try:
                resp = self._http.get(self.api_url, params=self._params(request))
            except httpx.TransportError as exc:
                raise self._count(
                    SyncError(ErrorType.NETWORK, f"{type(exc).__name__} calling {self.name}")
                ) from None
            if resp.status_code != 429:
                break
            self.stats.http_429 += 1
            refusals += 1
            wait = self._retry_after_429(resp)
            reason = _reason(resp)
            if wait is None or refusals >= 3 or wait > self.max_wait_seconds:
                retry_in = wait if wait is not None else 3600.0
                raise self._count(
                    RateLimitError(
                        f"{self.name} refused the request (429): {reason}",
                        retry_after=datetime.now(UTC) + timedelta(seconds=retry_in),
                    )
                )
            self._log.warning(f"{self.name} answered 429 ({reason}); waiting {wait:.0f} s")
            self._wait_started(wait, f"{self.label}'s per-minute limit (it answered 429)")
            try:
                self._sleep(wait)
            finally:
                self._wait_over()
        if resp.status_code in (401, 403):
            raise self._count(
                SyncError(
                    ErrorType.CONFIGURATION,
                    f"{self.name} refused the API key (HTTP {resp.status_code})",
                    retryable=False,
                    status_code=resp.status_code,
                )
            )
        try:
            return response_json(resp, self.name, _reason)
        except SyncError as err:
            raise self._count(err) from None

    def _fetch_with_retries(self, request: WeatherRequest) -> dict[DayKey, DayWeather]:
        def before_sleep(state: RetryCallState) -> None:
            self.stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            self._log.warning(
                f"{self.name} call failed ({exc}); retry {state.attempt_number}/{self.max_retries}"
            )

        retries = 0
        try:
            for attempt in Retrying(
                retry=retry_if_exception(is_transient),
                wait=wait_random_exponential(multiplier=self.backoff[0], max=self.backoff[1]),
                stop=stop_after_attempt(self.max_retries + 1),
                before_sleep=before_sleep,
                sleep=self._sleep,
                reraise=True,
            ):
                with attempt:
                    retries = attempt.retry_state.attempt_number - 1
                    body = self._get_once(request)
                    try:
                        return self._parse(request, body)
                    except SHAPE_ERRORS as exc:
                        raise self._count(
                            SyncError(
                                ErrorType.INVALID_RESPONSE,
                                f"{self.name} answered an unexpected shape "
                                f"({type(exc).__name__}: {str(exc)[:200]})",
                            )
                        ) from None
        except SyncError as err:
            # The URL's path only: its query holds coordinates and, for some providers, a key.
            endpoint = f"GET {httpx.URL(self.api_url).path}"
            raise err.within(api_endpoint=endpoint, retry_count=retries) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def fetch(self, request: WeatherRequest) -> dict[HourKey, HourlyWeather | None]:
        """`fetch_days` hour by hour: every hour the request covers (OpenWeatherMap's: the one
        hour asked), None where the provider has no data (yet)."""
        days = self.fetch_days(request)

        def weather(cell: Cell, day: date, hour: int) -> HourlyWeather | None:
            found = days.get((cell, day))
            return found.hour(hour) if found is not None else None

        if request.hour is not None:
            cell = request.locations[0].cell
            slot = day_and_hour(request.hour)
            return {(cell, request.hour): weather(cell, *slot) if slot else None}
        return {
            (loc.cell, hour_at(day, h)): weather(loc.cell, day, h)
            for loc in request.locations
            for day in (loc.start + timedelta(days=k) for k in range(loc.days))
            for h in range(HOURS)
        }

    def fetch_days(self, request: WeatherRequest) -> dict[DayKey, DayWeather]:
        self.stats.requests += 1
        try:
            result = self.breaker.call(self._fetch_with_retries, request)
        except pybreaker.CircuitBreakerError:
            raise self._count(
                SyncError(
                    ErrorType.SERVER,
                    f"{self.name} is failing: its circuit breaker is open "
                    f"(retry after {self.breaker.reset_timeout:.0f} s)",
                    retry_after=datetime.now(UTC) + timedelta(seconds=self.breaker.reset_timeout),
                    details={"circuit_breaker": "open"},
                )
            ) from None
        self.stats.weight += request.weight
        self.stats.locations += len(request.locations)
        return result


# -- Open-Meteo --------------------------------------------------------------------------------
OPEN_METEO_VARIABLES = (
    "temperature_2m",
    "apparent_temperature",
    "relative_humidity_2m",
    "pressure_msl",
    "wind_speed_10m",
    "wind_direction_10m",
    "weather_code",
)


def open_meteo_weight(n_variables: int, days: int) -> float:
    """Open-Meteo's count of calls for one location and date range."""
    variables = n_variables / 10
    return max(1.0, variables, variables * days / 14)


def cheapest_ranges(
    days: Iterable[date], n_variables: int, max_days: int
) -> list[tuple[date, date]]:
    """The contiguous date ranges that cover `days` for the least weight Open-Meteo counts.

    Exact dynamic programming over the sorted days, in integers (weights times 140: a range of
    d days weighs max(140, 14 v, v d)): `best[j]` is the least weight covering the first j
    days. A range weighs the minimum (`floor`) up to floor / v days, then v per day of its span,
    so the best last range ending on day j starts either at the earliest day still within
    the minimum's span (`best` only grows: the earliest is the cheapest) or before, where its
    weight `best[i] + v * (day_j - day_i + 1)` comes from a running minimum of
    `best[i] - v * day_i`: O(days). Ties go to the earlier start (longer ranges: more days
    cached for the same weight). Ranges longer than `max_days` are then cut in equal parts
    (for the same weight while the parts stay longer than the minimum's span)."""
    ordinals = sorted({d.toordinal() for d in days})
    v = n_variables
    floor = max(140, 14 * v)
    best = [0]
    start_of: list[int] = []  # where the last range of best[j + 1] starts
    first = 0  # the earliest day within the flat span of the current one
    run_min: int | None = None  # min of best[i] - v * day_i over the days before `first`
    run_arg = 0
    for day in ordinals:
        while v * (day - ordinals[first] + 1) > floor:
            candidate = best[first] - v * ordinals[first]
            if run_min is None or candidate < run_min:
                run_min, run_arg = candidate, first
            first += 1
        cost, start = best[first] + floor, first
        if run_min is not None and run_min + v * (day + 1) <= cost:
            cost, start = run_min + v * (day + 1), run_arg
        best.append(cost)
        start_of.append(start)
    ranges: list[tuple[int, int]] = []
    j = len(ordinals)
    while j:
        i = start_of[j - 1]
        ranges.append((ordinals[i], ordinals[j - 1]))
        j = i
    out: list[tuple[date, date]] = []
    for lo, hi in reversed(ranges):
        span = hi - lo + 1
        parts = -(-span // max(1, max_days))
        for k in range(parts):
            out.append(
                (
                    date.fromordinal(lo + span * k // parts),
                    date.fromordinal(lo + span * (k + 1) // parts - 1),
                )
            )
    return out


def _numbers(values: Any, what: str) -> list[Any]:
    """A JSON array of numbers (or nulls) of an answer, checked in one pass; anything else is
    a broken answer (ValueError)."""
    if not isinstance(values, list):
        raise ValueError(f"{what} is {type(values).__name__}, not a list")
    for value in values:
        kind = type(value)
        if kind is float:
            if value - value != 0.0:  # NaN or an infinity
                raise ValueError(f"{what} holds {value}, not a number")
        elif kind is int:
            if not -sys.float_info.max <= value <= sys.float_info.max:
                raise ValueError(f"{what} holds an integer too large for a float")
        elif value is not None:
            raise ValueError(f"{what} is {kind.__name__}, not a number")
    return values


def _celsius(values: list[Any], unit: str) -> list[Any]:
    if unit in CELSIUS:
        return values
    return [to_celsius(v, unit) for v in values]


def _mps(values: list[Any], unit: str) -> list[Any]:
    if values.count(None) == len(values):
        return values
    factor = mps_factor(unit)
    return [None if v is None else round(v * factor, 2) for v in values]


def _answer_days(
    loc: LocationRange, times: list[Any], fields: dict[str, list[Any]]
) -> dict[DayKey, DayWeather]:
    """One location's answer (hourly columns in our units) cut into its UTC days. An hour is
    present when it has a temperature: the archive answers nulls for hours it has not
    published yet, which are then missing, never invented."""
    first = int(hour_at(loc.start, 0).timestamp())
    out: dict[DayKey, DayWeather] = {}
    if times == list(range(first, first + loc.days * 86_400, 3_600)):
        # The usual answer: every hour of the range, in order: sliced day by day.
        for k in range(loc.days):
            cut = slice(k * HOURS, (k + 1) * HOURS)
            out[(loc.cell, loc.start + timedelta(days=k))] = _day(
                {f: c[cut] for f, c in fields.items()}
            )
        return out
    # Anything else: hour by hour, keeping the whole hours of the range.
    rows: dict[date, dict[int, int]] = {}
    for i, t in enumerate(times):
        slot = day_and_hour(datetime.fromtimestamp(int(t), UTC))
        if slot is not None and loc.start <= slot[0] <= loc.end:
            rows.setdefault(slot[0], {})[slot[1]] = i
    for day, index in rows.items():
        out[(loc.cell, day)] = _day(
            {
                f: [c[index[h]] if h in index else None for h in range(HOURS)]
                for f, c in fields.items()
            }
        )
    return out


def _day(columns: dict[str, list[Any]]) -> DayWeather:
    temperature = columns["temperature_celsius"]
    present = ALL_HOURS
    if None in temperature:
        present = sum(1 << h for h, t in enumerate(temperature) if t is not None)
    return DayWeather.of(present, columns)


class OpenMeteoProvider(HttpWeatherProvider):
    name = "open-meteo"
    label = "Open-Meteo"

    def __init__(
        self,
        api_url: str = OPEN_METEO_ARCHIVE_URL,
        *,
        minutely: int = 600,
        hourly: int = 5_000,
        daily: int = 10_000,
        max_locations: int = 100,
        max_request_weight: float = 100.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(api_url, minutely=minutely, hourly=hourly, daily=daily, **kwargs)
        self.max_locations = max_locations
        # A request must fit the minute's budget with room to spare.
        self.max_request_weight = min(max_request_weight, max(1.0, minutely / 2))
        self.variables = OPEN_METEO_VARIABLES

    def plan(self, needed: Mapping[Cell, Iterable[datetime]], today: date) -> list[WeatherRequest]:
        n = len(self.variables)
        max_days = max(1, int(self.max_request_weight * 14 * 10 / n))
        locations: list[tuple[LocationRange, float]] = []
        for cell in sorted(needed):
            days = [h.date() for h in needed[cell] if h.date() <= today]
            for start, end in cheapest_ranges(days, n, max_days):
                loc = LocationRange(cell, start, end)
                locations.append((loc, open_meteo_weight(n, loc.days)))
        requests: list[WeatherRequest] = []
        batch: list[LocationRange] = []
        weight = 0.0
        for loc, w in sorted(locations, key=lambda lw: (lw[0].start, lw[0].cell)):
            if batch and (len(batch) >= self.max_locations or weight + w > self.max_request_weight):
                requests.append(WeatherRequest(batch, round(weight, 4)))
                batch, weight = [], 0.0
            batch.append(loc)
            weight += w
        if batch:
            requests.append(WeatherRequest(batch, round(weight, 4)))
        return requests

    def _params(self, request: WeatherRequest) -> dict[str, str]:
        locs = request.locations
        return {
            "latitude": ",".join(f"{loc.cell[0]:.2f}" for loc in locs),
            "longitude": ",".join(f"{loc.cell[1]:.2f}" for loc in locs),
            "start_date": ",".join(loc.start.isoformat() for loc in locs),
            "end_date": ",".join(loc.end.isoformat() for loc in locs),
            "hourly": ",".join(self.variables),
            "timezone": "GMT",
            "timeformat": "unixtime",
            "wind_speed_unit": "ms",
        }

    def _retry_after_429(self, resp: httpx.Response) -> float | None:
        reason = _reason(resp)
        if reason.startswith("Minutely") or "concurrent" in reason:
            # Open-Meteo's minute counters are cleared on every minute boundary.
            return 61.0 - (time.time() % 60)
        return None  # hourly or daily: not worth holding a run for

    def _parse(self, request: WeatherRequest, body: Any) -> dict[DayKey, DayWeather]:
        """Column by column (a year of a place is 8,760 hours): each column checked in one
        pass, converted to our units, then cut into days."""
        items = body if isinstance(body, list) else [body]
        if isinstance(body, dict) and body.get("error"):
            raise ValueError(f"error answer: {body.get('reason')}")
        if len(items) != len(request.locations):
            raise ValueError(f"{len(items)} locations answered, {len(request.locations)} asked")
        out: dict[DayKey, DayWeather] = {}
        for loc, item in zip(request.locations, items, strict=True):
            hourly = item["hourly"]
            units = item.get("hourly_units", {})
            if int(item.get("utc_offset_seconds", 0)) != 0:
                raise ValueError("the answer is not in GMT")
            times = _numbers(hourly["time"], "hourly.time")
            columns = {v: _numbers(hourly[v], f"hourly.{v}") for v in self.variables}
            if any(len(col) != len(times) for col in columns.values()):
                raise ValueError("hourly arrays of different lengths")
            t_unit = units.get("temperature_2m", "°C")
            codes = columns["weather_code"]
            names = {code: condition(code) for code in set(codes)}
            fields = {
                "temperature_celsius": _celsius(columns["temperature_2m"], t_unit),
                "feels_like_celsius": _celsius(
                    columns["apparent_temperature"], units.get("apparent_temperature", t_unit)
                ),
                "humidity_percent": columns["relative_humidity_2m"],
                "pressure_hpa": columns["pressure_msl"],
                "wind_speed_mps": _mps(
                    columns["wind_speed_10m"], units.get("wind_speed_10m", "m/s")
                ),
                "wind_direction_degrees": columns["wind_direction_10m"],
                "weather_code": [None if c is None else int(c) for c in codes],
                "weather_condition": [names[c] for c in codes],
                # visibility and UV index are not in the archive: null, not invented
            }
            out.update(_answer_days(loc, times, fields))
        return out


# -- OpenWeatherMap ----------------------------------------------------------------------------
class OpenWeatherMapProvider(HttpWeatherProvider):
    """One Call 3.0 `timemachine`: one call per place and hour (the cache makes it rare)."""

    name = "openweathermap"
    label = "OpenWeatherMap"

    def __init__(
        self,
        api_key: str,
        api_url: str = OPENWEATHERMAP_TIMEMACHINE_URL,
        *,
        minutely: int = 60,
        hourly: int = 1_000,
        daily: int = 1_000,
        **kwargs: Any,
    ) -> None:
        if not api_key:
            raise SyncError(
                ErrorType.CONFIGURATION,
                "the OpenWeatherMap provider needs OPENWEATHERMAP_API_KEY",
                retryable=False,
            )
        super().__init__(api_url, minutely=minutely, hourly=hourly, daily=daily, **kwargs)
        self._api_key = api_key

    def plan(self, needed: Mapping[Cell, Iterable[datetime]], today: date) -> list[WeatherRequest]:
        return [
            WeatherRequest([LocationRange(cell, hour.date(), hour.date())], 1.0, hour=hour)
            for cell in sorted(needed)
            for hour in sorted(set(needed[cell]))
            if hour.date() <= today
        ]

    def _params(self, request: WeatherRequest) -> dict[str, str]:
        cell = request.locations[0].cell
        assert request.hour is not None
        return {
            "lat": f"{cell[0]:.2f}",
            "lon": f"{cell[1]:.2f}",
            "dt": str(int(request.hour.timestamp())),
            "units": "metric",
            "appid": self._api_key,
        }

    def _parse(self, request: WeatherRequest, body: Any) -> dict[DayKey, DayWeather]:
        assert request.hour is not None
        slot = day_and_hour(request.hour)
        data = body["data"]
        if not data or slot is None:
            return {}  # no data for that hour: nothing to keep
        d = data[0]
        described = (d.get("weather") or [{}])[0]
        description = described.get("description")
        if description is not None and not isinstance(description, str):
            raise ValueError("weather.description is not text")
        day, hour = slot
        weather = HourlyWeather(
            temperature_celsius=_number(d["temp"], "temp"),
            feels_like_celsius=_number(d.get("feels_like"), "feels_like"),
            humidity_percent=_number(d.get("humidity"), "humidity"),
            pressure_hpa=_number(d.get("pressure"), "pressure"),
            wind_speed_mps=to_mps(_number(d.get("wind_speed"), "wind_speed"), "m/s"),
            wind_direction_degrees=_number(d.get("wind_deg"), "wind_deg"),
            weather_code=None,  # OpenWeatherMap's own ids are not WMO codes
            weather_condition=description.capitalize() if description else None,
            visibility_meters=_number(d.get("visibility"), "visibility"),
            uv_index=_number(d.get("uvi"), "uvi"),
        )
        return {(request.locations[0].cell, day): DayWeather.of_hours({hour: weather})}
