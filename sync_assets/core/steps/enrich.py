"""Enriching a run's partitions: the work behind `weather_enriched_activities`.

All partitions of the run are planned together (`enrich_tables`), so a year of a user costs a
handful of weather requests. Each user's session enters `enriching_weather`, shows the weather
requests and the provider's waits while they happen, and ends the phase with its counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sync_assets.core import metrics
from sync_assets.core.clients.weather import WeatherProvider, WeatherWait
from sync_assets.core.enrichment.activities import EnrichReport, enrich_tables
from sync_assets.core.sessions import SessionTracker, SyncState, tracker_for_run
from sync_assets.core.steps import classified, fail_session
from sync_assets.core.storage.base import Store
from sync_assets.core.windows import split_key

if TYPE_CHECKING:
    from sync_assets.core.models import PartitionData

STEP = "weather_enriched_activities"


def user_windows(raw: Mapping[str, PartitionData]) -> dict[str, tuple[datetime, datetime]]:
    """Each user's first and last activity start in these partitions (the session's window)."""
    dates: dict[str, list[datetime]] = {}
    for key, part in raw.items():
        dates.setdefault(split_key(key)[0], []).extend(
            part.activities.column("start_date").to_pylist()
        )
    return {user: (min(d, default=None), max(d, default=None)) for user, d in dates.items()}


class LiveWeather:
    """The weather step's figures in its sessions' progress while it runs: requests finished
    and planned, the provider's waits, and the wait under way (`waiting`, written when it
    starts and when it ends; the rest at the tracker's bounded rate)."""

    def __init__(self, trackers: list[SessionTracker]) -> None:
        self.trackers = trackers
        self.done, self.planned = 0, None
        self.waits, self.waited = 0, 0.0
        self.wait: WeatherWait | None = None

    def details(self) -> dict[str, object]:
        out: dict[str, object] = {
            "weather_requests": self.done,
            "weather_requests_planned": self.planned,
            "weather_waits": self.waits,
            "weather_waited_seconds": round(self.waited),
        }
        if self.wait is not None:
            out["waiting"] = self.wait.as_dict()
        return out

    def progress(self, done: int, planned: int) -> None:
        self.done, self.planned = done, planned
        for tracker in self.trackers:
            tracker.progress(done, planned, details=self.details())

    def waiting(self, wait: WeatherWait | None) -> None:
        if wait is not None:
            self.waits += 1
            self.waited += wait.seconds
        self.wait = wait
        for tracker in self.trackers:
            tracker.progress(self.done, self.planned, force=True, details=self.details())


def activity_count(raw: Mapping[str, PartitionData], user: str) -> int:
    return sum(p.activities.num_rows for key, p in raw.items() if split_key(key)[0] == user)


def weather_count(enriched: Mapping[str, pa.Table], user: str) -> int:
    return sum(
        1
        for key, table in enriched.items()
        if split_key(key)[0] == user
        for status in table.column("enrichment_status").to_pylist()
        if '"weather":true' in status
    )


@dataclass
class EnrichOutcome:
    """What `enrich_partitions` did; filled as it goes, so a failed run still says what it
    spent (`step_fields`)."""

    users: int = 0
    provider: WeatherProvider | None = None  # None: it failed before any weather request
    report: EnrichReport | None = None
    seconds: float = 0.0  # enrichment and the provider's close
    enriched: dict[str, pa.Table] = field(default_factory=dict)  # key -> enriched activities
    partitions: dict[str, PartitionData] = field(default_factory=dict)  # the step's output

    def step_fields(self) -> dict[str, Any] | None:
        """The step's `sync_step_metrics` row; None when it never got to the weather (it
        failed opening the sessions or building the provider): no row, as before."""
        if self.provider is None:
            return None
        stats = self.provider.stats
        return {
            "api": "weather",
            "users": self.users,
            "activities": self.report.activities if self.report else 0,
            "seconds": self.seconds,
            "api_errors": sum(stats.errors_by_type.values()),
            "api_rate_limited": stats.http_429,
            "api_retries": stats.retries,
            "api_quota_used": round(stats.weight, 2),
            **metrics.api_fields(stats.latency),
        }


def enrich_partitions(
    raw: Mapping[str, PartitionData],
    store: Store,
    run: Any,
    client_for: Callable[[Callable[[WeatherWait | None], None]], WeatherProvider],
    *,
    cell_degrees: float,
    pending_days: int,
    logger: logging.Logger | Any,
    outcome: EnrichOutcome | None = None,
    skip_weather: bool = False,
) -> EnrichOutcome:
    """Place names and start-hour weather for every activity of `raw` (partition key ->
    fetched data), all planned together; returns (and fills `outcome`, if given) the enriched
    partitions and the figures.

    `run` is the Dagster run (its id and tags name the sessions); `client_for(on_wait)` builds
    the weather provider, telling `on_wait` about its waits. A weather failure never fails the
    step: the activities flow on, marked, and a later run fills them in.

    `skip_weather` (`SyncOptions.skip_weather_enrichment`): no weather request, the sessions
    stay in `fetching_activities` (the store step moves them on to `storing_data`) and every
    located activity is marked `skipped`, which the weather retry picks up like `pending`.
    """
    outcome = outcome if outcome is not None else EnrichOutcome()
    trackers = {
        user: tracker_for_run(store, run, user, time_range_start=start, time_range_end=end)
        for user, (start, end) in user_windows(raw).items()
    }
    try:
        return _enrich(
            raw,
            store,
            client_for,
            trackers,
            cell_degrees,
            pending_days,
            logger,
            outcome,
            skip_weather,
        )
    except Exception as exc:  # the sessions say why the step failed (a database gone, ...)
        for tracker in trackers.values():
            fail_session(tracker, classified(exc))
        raise


def _enrich(
    raw: Mapping[str, PartitionData],
    store: Store,
    client_for: Callable[[Callable[[WeatherWait | None], None]], WeatherProvider],
    trackers: dict[str, SessionTracker],
    cell_degrees: float,
    pending_days: int,
    logger: logging.Logger | Any,
    outcome: EnrichOutcome,
    skip_weather: bool = False,
) -> EnrichOutcome:
    if not skip_weather:
        for tracker in trackers.values():
            tracker.enter(SyncState.ENRICHING)
    live = LiveWeather(list(trackers.values()))
    provider = client_for(live.waiting)
    outcome.users, outcome.provider = len(trackers), provider
    started = time.perf_counter()
    try:
        enriched, outcome.report = enrich_tables(
            {key: part.activities for key, part in raw.items()},
            provider,
            store,
            cell_degrees=cell_degrees,
            pending_days=pending_days,
            progress=live.progress,
            logger=logger,
            skip_weather=skip_weather,
        )
    finally:
        provider.close()
        outcome.seconds = round(time.perf_counter() - started, 3)
    report = outcome.report
    outcome.enriched = enriched
    outcome.partitions = {key: replace(part, activities=enriched[key]) for key, part in raw.items()}
    if skip_weather:
        logger.info(
            f"weather skipped (skip_weather_enrichment): {report.weather_skipped} of "
            f"{report.activities} activities stored without it, to be enriched later"
        )
        return outcome
    for user, tracker in trackers.items():
        done = weather_count(enriched, user)
        counters = {"activities_enriched": done}
        if not tracker.session.activities_fetched:  # nothing listed: a weather re-run's total
            counters["total_activities_estimated"] = activity_count(raw, user)
        tracker.progress(done, None, force=True, details=live.details(), **counters)
    if report.weather.errors:
        logger.warning(
            f"weather enrichment degraded: {report.weather_failed} activities without weather "
            f"({report.weather.requests_failed} failed requests); runs_table stores them marked"
        )
    logger.info(
        f"{report.weather_enriched}/{report.activities} activities with weather "
        f"({report.weather_pending} pending, {report.no_location} without coordinates) from "
        f"{report.weather.requests_planned} requests and {report.weather.cache_hits} cached hours"
    )
    return outcome
