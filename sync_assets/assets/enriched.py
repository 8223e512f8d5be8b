"""`weather_enriched_activities`: the fetched activities with their place and weather."""

import json
from collections import Counter

import pyarrow as pa
from dagster import AssetExecutionContext, BackfillPolicy, MetadataValue, Output, asset

from sync_assets.core import metrics
from sync_assets.core.clients.weather import WeatherProvider
from sync_assets.core.enrichment.activities import EnrichReport
from sync_assets.core.steps.enrich import STEP, EnrichOutcome, enrich_partitions
from sync_assets.dagster_private import add_partition_metadata
from sync_assets.job_names import WEATHER_ENRICHMENT_JOB
from sync_assets.partitions import run_partition_keys, split_key, strava_partitions
from sync_assets.resources.parquet_io import PartitionData, by_partition
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.resources.weather import WeatherResource
from sync_assets.sync_request import SyncOptions
from sync_assets.user_runs import step_hold


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
        "run_weather_skipped": report.weather_skipped,
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
    failed = weather["failed"]
    return {
        "activities": table.num_rows,
        # The seed's EnrichmentResponse.metadata for this month (`geocoded` below too):
        # skipped is every activity neither enriched nor failed (no location, no data for
        # its place and hour, not yet published by the archive, or weather not asked for).
        "weatherEnriched": weather["enriched"],
        "failed": failed,
        "skipped": table.num_rows - weather["enriched"] - failed,
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


def _skips_weather(context: AssetExecutionContext, config: SyncOptions) -> bool:
    """`skip_weather_enrichment`, except in the weather-only job: filling the weather in is
    all that job is for, so there it is ignored (with a warning) rather than obeyed."""
    if config.skip_weather_enrichment and context.job_name == WEATHER_ENRICHMENT_JOB:
        context.log.warning(f"skip_weather_enrichment ignored: {WEATHER_ENRICHMENT_JOB} enriches")
        return False
    return config.skip_weather_enrichment


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
    config: SyncOptions,
    weather: WeatherResource,
    supabase: SupabaseResource,
    raw_strava_activities,  # noqa: ANN001 - PartitionData, or a dict of them for a range run
) -> Output[dict[str, PartitionData]]:
    """Place names (offline) and start-hour weather for every activity of the partitions.

    All partitions of the run are planned together, so a year of a user costs a handful of
    weather requests, and hours already in the shared cache cost none. A weather failure
    never fails the asset: the activities flow on, marked, and a later run fills them in.
    `config.skip_weather_enrichment`: no weather request at all, the activities marked
    `skipped` (place names still, offline); `config.max_retries`: the provider's retries.
    """
    raw = by_partition(list(run_partition_keys(context)), raw_strava_activities)
    store = supabase.store()
    outcome = EnrichOutcome()
    with (
        step_hold(context, store, {split_key(k)[0] for k in raw}),
        metrics.step(store, context.run, STEP, context.log, collect=outcome.step_fields),
    ):
        enrich_partitions(
            raw,
            store,
            context.run,
            lambda on_wait: weather.client(
                logger=context.log, on_wait=on_wait, max_retries=config.max_retries
            ),
            cell_degrees=weather.cell_degrees,
            pending_days=weather.pending_days,
            logger=context.log,
            outcome=outcome,
            skip_weather=_skips_weather(context, config),
        )
    add_partition_metadata(context, {key: partition_metadata(outcome.enriched[key]) for key in raw})
    return Output(outcome.partitions, metadata=_metadata(outcome.report, outcome.provider))
