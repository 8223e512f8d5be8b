"""`weather_enriched_activities`: the fetched activities with their place and weather."""

import time
from datetime import datetime

import pyarrow as pa
from dagster import AssetExecutionContext, BackfillPolicy, MetadataValue, Output, asset

from sync_assets import metrics
from sync_assets.enrichment.activities import EnrichReport, enrich_tables
from sync_assets.partitions import run_partition_keys, split_key, strava_partitions
from sync_assets.resources.parquet_io import PartitionData, by_partition
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.resources.weather import WeatherResource
from sync_assets.resources.weather_providers import WeatherProvider
from sync_assets.sessions import SyncState, tracker_for_run


def _user_windows(raw: dict[str, PartitionData]) -> dict[str, tuple[datetime, datetime]]:
    """Each user's first and last activity start in these partitions (the session's window)."""
    dates: dict[str, list[datetime]] = {}
    for key, part in raw.items():
        dates.setdefault(split_key(key)[0], []).extend(
            part.activities.column("start_date").to_pylist()
        )
    return {user: (min(d, default=None), max(d, default=None)) for user, d in dates.items()}


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


def _metadata(report: EnrichReport, provider: WeatherProvider) -> dict[str, object]:
    w = report.weather
    located = report.activities - report.no_location
    return {
        "activities": report.activities,
        "weather_enriched": report.weather_enriched,
        "weather_pending": report.weather_pending,
        "weather_failed": report.weather_failed,
        "weather_no_data": report.weather_no_data,
        "no_location": report.no_location,
        "geocoded": report.geocoded,
        "weather_coverage": MetadataValue.float(round(report.coverage, 4)),
        "weather_coverage_text": MetadataValue.text(
            f"{report.coverage:.1%} of {located:,} activities with coordinates "
            f"({report.weather_pending:,} pending, {report.weather_failed:,} failed)"
        ),
        "weather_provider": provider.name,
        "weather_calls_charged": MetadataValue.float(round(provider.stats.weight, 2)),
        "weather_quota_usage": MetadataValue.text(_quota(provider)),
        "weather_budget_waits": provider.stats.budget_waits,
        "weather_http_requests": provider.stats.http_requests,
        "weather_retries": provider.stats.retries,
        "weather_429": provider.stats.http_429,
        "weather_cells": report.cells,
        "weather_hours_needed": w.hours_needed,
        "weather_cache_hits": w.cache_hits,
        "weather_requests": w.requests_planned,
        "weather_requests_failed": w.requests_failed,
        # The seed's approach: one weather request per located activity.
        "weather_requests_one_per_activity": located,
        "weather_errors": MetadataValue.text("\n".join(w.errors[:10]) or "none"),
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

    def progress(done: int, total: int) -> None:
        for tracker in trackers.values():
            tracker.progress(done, total)

    provider = weather.client(logger=context.log)
    started = time.perf_counter()
    report = None
    try:
        enriched, report = enrich_tables(
            {key: part.activities for key, part in raw.items()},
            provider,
            store,
            cell_degrees=weather.cell_degrees,
            pending_days=weather.pending_days,
            progress=progress,
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
        tracker.progress(done, None, force=True, **counters)
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
    return Output(out, metadata=_metadata(report, provider))
