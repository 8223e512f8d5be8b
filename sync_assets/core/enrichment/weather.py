"""Weather for activities: the shared cache first, then few batched provider requests.

An activity's weather is the weather of its start *cell* (coordinates rounded to a grid, 0.1°
by default, about 11 km: finer than the reanalysis behind the archive) at its start hour
(rounded to the nearest UTC hour). Every day a request brings back is cached, one row per
provider, cell and UTC day holding its hours, so no hour of a cell is ever fetched twice,
whichever run or user needs it next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sync_assets.core.clients.weather import (
    DEFAULT_CELL_DEGREES,
    PENDING_DAYS,
    Cell,
    DayKey,
    DayWeather,
    HourKey,
    HourlyWeather,
    WeatherProvider,
    day_and_hour,
)
from sync_assets.core.errors import SyncError

log = logging.getLogger(__name__)

ARCHIVE_LAG = timedelta(days=6)  # ERA5's ~5 days, and a margin


def cell_of(lat: float, lng: float, degrees: float = DEFAULT_CELL_DEGREES) -> Cell:
    """The centre of the grid cell holding (lat, lng), rounded to 2 decimals."""
    return (round(round(lat / degrees) * degrees, 2), round(round(lng / degrees) * degrees, 2))


def hour_of(moment: datetime) -> datetime:
    """The UTC hour nearest to `moment` (a start at 07:50 gets the 08:00 weather)."""
    moment = moment.astimezone(UTC)
    return (moment + timedelta(minutes=30)).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class WeatherStatus:
    status: str  # "pending" | "failed" | "no_data"
    reason: str
    retry_after: datetime | None = None
    retryable: bool = True


class WeatherCache(Protocol):
    def weather_lookup(
        self, provider: str, keys: Collection[HourKey]
    ) -> dict[HourKey, HourlyWeather]: ...

    def weather_store(self, provider: str, days: Mapping[DayKey, DayWeather]) -> int:
        """Keep these days (one row each; hours a cached day lacks are added to it, those it
        has kept as they are); returns the rows written."""

    def weather_lock(
        self, provider: str, cells: Collection[Cell]
    ) -> AbstractContextManager[None]: ...


@dataclass
class WeatherReport:
    """What resolving a set of hours cost; reported as metadata and by the benchmark."""

    hours_needed: int = 0
    cache_hits: int = 0
    hours_fetched: int = 0  # hours with data that requests brought back (all of them cached)
    requests_planned: int = 0
    requests_failed: int = 0
    pending: int = 0
    failed: int = 0
    no_data: int = 0
    errors: list[str] = field(default_factory=list)


def _pending_retry(hour: datetime, now: datetime) -> datetime:
    """When to ask again: once the archive's usual lag has passed, else tomorrow (stable within
    a day, so re-running a sync does not rewrite pending rows)."""
    expected = hour + ARCHIVE_LAG
    if expected > now:
        return expected
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def resolve_weather(
    keys: Collection[HourKey],
    provider: WeatherProvider,
    cache: WeatherCache,
    *,
    now: datetime | None = None,
    pending_days: int = PENDING_DAYS,
    progress: Callable[[int, int], Any] | None = None,
    logger: logging.Logger | Any | None = None,
) -> tuple[dict[HourKey, HourlyWeather], dict[HourKey, WeatherStatus], WeatherReport]:
    """Weather for every key, or the reason it has none; provider failures never raise.

    `progress(done, planned)` is told the provider requests finished (served or failed) out of
    those planned: before the first one, then after each."""
    logger = logger or log
    now = now or datetime.now(UTC)
    wanted = set(keys)
    report = WeatherReport(hours_needed=len(wanted))
    found = cache.weather_lookup(provider.name, wanted) if wanted else {}
    failures: dict[HourKey, WeatherStatus] = {}
    if wanted - found.keys():
        # Runs needing the same cells take turns; whoever waited finds them cached.
        cells = {cell for cell, _ in wanted - found.keys()}
        with cache.weather_lock(provider.name, cells):
            found |= cache.weather_lookup(provider.name, wanted - found.keys())
            report.cache_hits = len(found)
            _fetch(
                wanted - found.keys(),
                found,
                failures,
                provider,
                cache,
                now,
                report,
                progress,
                logger,
            )
    else:
        report.cache_hits = len(found)
    statuses: dict[HourKey, WeatherStatus] = {}
    recent = now - timedelta(days=pending_days)
    for key in wanted - found.keys():
        if key in failures:
            statuses[key] = failures[key]
            report.failed += 1
        elif key[1] >= recent:
            statuses[key] = WeatherStatus(
                "pending",
                "the archive has no data for this hour yet",
                retry_after=_pending_retry(key[1], now),
            )
            report.pending += 1
        else:
            statuses[key] = WeatherStatus(
                "no_data", "the provider has no data for this place and hour", retryable=False
            )
            report.no_data += 1
    return found, statuses, report


def _fetch(
    missing: set[HourKey],
    found: dict[HourKey, HourlyWeather],
    failures: dict[HourKey, WeatherStatus],
    provider: WeatherProvider,
    cache: WeatherCache,
    now: datetime,
    report: WeatherReport,
    progress: Callable[[int, int], Any] | None,
    logger: logging.Logger | Any,
) -> None:
    """Plan and send the requests for `missing`; fill `found`, `failures` and the cache."""
    by_cell: dict[Cell, set[datetime]] = {}
    for cell, hour in missing:
        by_cell.setdefault(cell, set()).add(hour)
    requests = provider.plan(by_cell, now.date())
    report.requests_planned = len(requests)
    if progress is not None and requests:
        progress(0, len(requests))
    for done, request in enumerate(requests, 1):
        try:
            answer = provider.fetch_days(request)
        except SyncError as err:
            report.requests_failed += 1
            report.errors.append(str(err))
            logger.warning(f"weather request {done}/{len(requests)} failed: {err}")
            status = WeatherStatus(
                "failed",
                f"{err.type.value}: {err.message}",
                retry_after=err.retry_after,
                retryable=err.retryable,
            )
            for loc in request.locations:
                for hour in by_cell.get(loc.cell, ()):
                    covered = (
                        hour == request.hour
                        if request.hour is not None
                        else loc.start <= hour.date() <= loc.end
                    )
                    if covered:
                        failures.setdefault((loc.cell, hour), status)
            if progress is not None:
                progress(done, len(requests))
            continue
        days = {key: day for key, day in answer.items() if day.present}
        if days:
            cache.weather_store(provider.name, days)
        report.hours_fetched += sum(day.hours for day in days.values())
        for key in missing:
            slot = day_and_hour(key[1])
            day = days.get((key[0], slot[0])) if slot else None
            weather = day.hour(slot[1]) if day is not None and slot else None
            if weather is not None:
                found[key] = weather
        if progress is not None:
            progress(done, len(requests))
