"""`weather_enriched_activities`: the fetched activities with their place and weather."""

import json
import time
from collections import Counter
from datetime import datetime

import pyarrow as pa
from dagster import AssetExecutionContext, BackfillPolicy, MetadataValue, Output, asset

from sync_assets import metrics
from sync_assets.enrichment.activities import EnrichReport, enrich_tables
from sync_assets.partitions import run_partition_keys, split_key, strava_partitions
from sync_assets.resources.parquet_io import PartitionData, by_partition
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.resources.weather import WeatherResource
from sync_assets.resources.weather_providers import WeatherProvider, WeatherWait
from sync_assets.sessions import SessionTracker, SyncState, tracker_for_run


def _user_windows(raw: dict[str, PartitionData]) -> dict[str, tuple[datetime, datetime]]:
    """Each user's first and last activity start in these partitions (the session's window)."""
    dates: dict[str, list[datetime]] = {}
    for key, part in raw.items():
        dates.setdefault(split_key(key)[0], []).extend(
            part.activities.column("start_date").to_pylist()
        )
    return {user: (min(d, default=None), max(d, default=None)) for user, d in dates.items()}


class _LiveWeather:
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


def _activity_count(raw: dict[str, PartitionData], user: str) -> int:
    return sum(p.activities.num_rows for key, p in raw.items() if split_key(key)[0] == user)


def _weather_count(enriched: dict[str, pa.Table], user: str) -> int:
    return sum(
        1
        for key, table in enriched.items()
        if split_key(key)[0] == user
        for status in table.column("enrichment_status").to_pylist()
        if '"weather":true' in status
    )


def _quota(provider: WeatherProvider) -> str:
    """The provider's budget as this process has spent it, window by window."""
    budget = getattr(provider, "budget", None)
    if budget is None:
        return "unknown"
    return ", ".join(
        f"{used:g}/{limit} per {window} ({used / limit:.0%})"
        for window, (used, limit) in budget.usage().items()
    )


def _coverage_text(coverage: float, located: int, pending: int, failed: int) -> str:
    return (
        f"{coverage:.1%} of {located:,} activities with coordinates "
        f"({pending:,} pending, {failed:,} failed)"
    )


def _metadata(report: EnrichReport, provider: WeatherProvider) -> dict[str, object]:
    """The run's figures (every partition's materialization carries them, as `run_` keys): the
    run's partitions are enriched together, one plan of requests for all."""
    w = report.weather
    located = report.activities - report.no_location
    return {
        "run_activities": report.activities,
        "run_weather_enriched": report.weather_enriched,
        "run_weather_pending": report.weather_pending,
        "run_weather_failed": report.weather_failed,
        "run_weather_no_data": report.weather_no_data,
        "run_no_location": report.no_location,
        "run_geocoded": report.geocoded,
        "run_weather_coverage": MetadataValue.float(round(report.coverage, 4)),
        "run_weather_coverage_text": MetadataValue.text(
            _coverage_text(report.coverage, located, report.weather_pending, report.weather_failed)
        ),
        "weather_provider": provider.name,
        "run_weather_calls_charged": MetadataValue.float(round(provider.stats.weight, 2)),
        "run_weather_quota_usage": MetadataValue.text(_quota(provider)),
        "run_weather_budget_waits": provider.stats.budget_waits,
        "run_weather_http_requests": provider.stats.http_requests,
        "run_weather_retries": provider.stats.retries,
        "run_weather_429": provider.stats.http_429,
        "run_weather_cells": report.cells,
        "run_weather_hours_needed": w.hours_needed,
        "run_weather_cache_hits": w.cache_hits,
        "run_weather_requests": w.requests_planned,
        "run_weather_requests_failed": w.requests_failed,
        # The seed's approach: one weather request per located activity.
        "run_weather_requests_one_per_activity": located,
        "run_weather_errors": MetadataValue.text("\n".join(w.errors[:10]) or "none"),
    }


def partition_metadata(table: pa.Table) -> dict[str, object]:
    """One partition's own counts, read from its rows' `enrichment_status`."""
    weather = Counter()
    geocoded = 0
    for raw in table.column("enrichment_status").to_pylist():
        status = json.loads(raw)
        weather[status.get("weather_status")] += 1
        geocoded += bool(status.get("geocoding"))
    located = table.num_rows - weather["no_location"]
    coverage = weather["enriched"] / located if located else 1.0
    return {
        "activities": table.num_rows,
        "weather_enriched": weather["enriched"],
        "weather_pending": weather["pending"],
        "weather_failed": weather["failed"],
        "weather_no_data": weather["no_data"],
        "no_location": weather["no_location"],
        "geocoded": geocoded,
        "weather_coverage": MetadataValue.float(round(coverage, 4)),
        "weather_coverage_text": MetadataValue.text(
            _coverage_text(coverage, located, weather["pending"], weather["failed"])
        ),
    }


@asset(
    partitions_def=strava_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="parquet_io_manager",
    pool="weather_api",
    group_name="strava",
    kinds={"python", "parquet"},
)
def weather_enriched_activities(
    context: AssetExecutionContext,
    weather: WeatherResource,
    supabase: SupabaseResource,
    raw_strava_activities,  # noqa: ANN001 - PartitionData, or a dict of them for a range run
) -> Output[dict[str, PartitionData]]:
    """Place names (offline) and start-hour weather for every activity of the partitions.

    All partitions of the run are planned together, so a year of a user costs a handful of
    weather requests, and hours already in the shared cache cost none. A weather failure
    never fails the asset: the activities flow on, marked, and a later run fills them in.
    """
    keys = list(run_partition_keys(context))
    store = supabase.store()
    raw = by_partition(keys, raw_strava_activities)
    trackers = {
        user: tracker_for_run(store, context.run, user, time_range_start=start, time_range_end=end)
        for user, (start, end) in _user_windows(raw).items()
    }
    for tracker in trackers.values():
        tracker.enter(SyncState.ENRICHING)
    live = _LiveWeather(list(trackers.values()))
    provider = weather.client(logger=context.log, on_wait=live.waiting)
    started = time.perf_counter()
    report = None
    try:
        enriched, report = enrich_tables(
            {key: part.activities for key, part in raw.items()},
            provider,
            store,
            cell_degrees=weather.cell_degrees,
            pending_days=weather.pending_days,
            progress=live.progress,
            logger=context.log,
        )
    finally:
        provider.close()
        stats = provider.stats
        metrics.record(
            store,
            context.run,
            "weather_enriched_activities",
            context.log,
            api="weather",
            users=len(trackers),
            activities=report.activities if report else 0,
            seconds=round(time.perf_counter() - started, 3),
            api_errors=sum(stats.errors_by_type.values()),
            api_rate_limited=stats.http_429,
            api_retries=stats.retries,
            api_quota_used=round(stats.weight, 2),
            **metrics.api_fields(stats.latency),
        )
    for user, tracker in trackers.items():
        done = _weather_count(enriched, user)
        counters = {"activities_enriched": done}
        if not tracker.session.activities_fetched:  # nothing listed: a weather re-run's total
            counters["total_activities_estimated"] = _activity_count(raw, user)
        tracker.progress(done, None, force=True, details=live.details(), **counters)
    if report.weather.errors:
        context.log.warning(
            f"weather enrichment degraded: {report.weather_failed} activities without weather "
            f"({report.weather.requests_failed} failed requests); runs_table stores them marked"
        )
    context.log.info(
        f"{report.weather_enriched}/{report.activities} activities with weather "
        f"({report.weather_pending} pending, {report.no_location} without coordinates) from "
        f"{report.weather.requests_planned} requests and {report.weather.cache_hits} cached hours"
    )
    out = {key: PartitionData(enriched[key], part.quarantine) for key, part in raw.items()}
    for key in out:
        context.add_asset_metadata(partition_metadata(enriched[key]), partition_key=key)
    return Output(out, metadata=_metadata(report, provider))
