"""`weather_enriched_activities` rows: each activity with its place and start-hour weather.

Nothing is dropped here: an activity whose enrichment failed keeps every Strava field, gets
nulls for what is unknown, and says why in `enrichment_status`, so a later run can fill in
exactly those activities (from the cache, or with a few requests) without asking Strava again.
The activity's `data_quality` notes (fields Strava left out, odd values kept, see
`sync_assets.core.models`) are copied into `enrichment_status` as `"data_quality"` when it has any.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from sync_assets.core.clients.weather import WEATHER_FIELDS, WeatherProvider
from sync_assets.core.enrichment.geocoding import reverse_geocode
from sync_assets.core.enrichment.weather import (
    DEFAULT_CELL_DEGREES,
    PENDING_DAYS,
    WeatherCache,
    WeatherReport,
    WeatherStatus,
    cell_of,
    hour_of,
    resolve_weather,
)
from sync_assets.core.models import ACTIVITY_SCHEMA, quality_notes

ENRICHED_SCHEMA = pa.schema(
    [
        *ACTIVITY_SCHEMA,
        pa.field("city", pa.string()),
        pa.field("state", pa.string()),
        pa.field("country", pa.string()),
        pa.field("temperature_celsius", pa.float64()),
        pa.field("feels_like_celsius", pa.float64()),
        pa.field("humidity_percent", pa.float64()),
        pa.field("pressure_hpa", pa.float64()),
        pa.field("wind_speed_mps", pa.float64()),
        pa.field("wind_direction_degrees", pa.float64()),
        pa.field("weather_code", pa.int64()),
        pa.field("weather_condition", pa.string()),
        pa.field("visibility_meters", pa.float64()),
        pa.field("uv_index", pa.float64()),
        pa.field("enrichment_status", pa.string()),  # JSON: see `status_json`
    ]
)
# What a later enrichment run fills in: `skipped` is a sync asked to store without weather
# (`SyncOptions.skip_weather_enrichment`); pending_enrichment.sql lists the same statuses.
RETRY_STATUSES = frozenset({"pending", "failed", "skipped"})
SKIPPED = WeatherStatus(
    "skipped", "the sync was asked to skip the weather (skip_weather_enrichment)"
)


@dataclass
class EnrichReport:
    activities: int = 0
    weather_enriched: int = 0
    weather_pending: int = 0
    weather_failed: int = 0
    weather_no_data: int = 0
    weather_skipped: int = 0
    no_location: int = 0
    geocoded: int = 0
    no_place: int = 0
    cells: int = 0
    weather: WeatherReport = field(default_factory=WeatherReport)

    @property
    def coverage(self) -> float:
        located = self.activities - self.no_location
        return self.weather_enriched / located if located else 1.0


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def enrich_tables(
    tables: Mapping[str, pa.Table],
    provider: WeatherProvider,
    cache: WeatherCache,
    *,
    cell_degrees: float = DEFAULT_CELL_DEGREES,
    pending_days: int = PENDING_DAYS,
    now: datetime | None = None,
    progress: Callable[[int, int], Any] | None = None,
    logger: logging.Logger | Any | None = None,
    skip_weather: bool = False,
) -> tuple[dict[str, pa.Table], EnrichReport]:
    """Enrich every partition's activities together: one plan of weather requests for all.
    `skip_weather`: no weather request (nor cache read); place names only, the located
    activities' weather `skipped`."""
    report = EnrichReport()
    rows_by_part = {key: table.to_pylist() for key, table in tables.items()}
    flat = [row for rows in rows_by_part.values() for row in rows]
    report.activities = len(flat)
    points = [
        (r["start_lat"], r["start_lng"])
        if r["start_lat"] is not None and r["start_lng"] is not None
        else None
        for r in flat
    ]
    places = reverse_geocode(points)
    keys = [
        None if p is None else (cell_of(p[0], p[1], cell_degrees), hour_of(r["start_date"]))
        for p, r in zip(points, flat, strict=True)
    ]
    wanted = {k for k in keys if k is not None}
    report.cells = len({k[0] for k in wanted})
    if skip_weather:
        found, statuses = {}, dict.fromkeys(wanted, SKIPPED)
    else:
        found, statuses, report.weather = resolve_weather(
            wanted,
            provider,
            cache,
            now=now,
            pending_days=pending_days,
            progress=progress,
            logger=logger,
        )
    for row, place, key in zip(flat, places, keys, strict=True):
        row["city"], row["state"], row["country"] = place.city, place.state, place.country
        status: dict[str, Any] = {
            "geocoding": place.status == "enriched",
            "geocoding_status": place.status,
        }
        if place.status == "enriched":
            report.geocoded += 1
        elif place.status == "no_place":
            report.no_place += 1
            status["geocoding_reason"] = f"no town within {place.distance_km:.0f} km"
        weather = found.get(key) if key is not None else None
        for name in WEATHER_FIELDS:
            row[name] = getattr(weather, name) if weather is not None else None
        if key is None:
            report.no_location += 1
            status |= {
                "weather": False,
                "weather_status": "no_location",
                "weather_reason": "the activity has no start coordinates",
            }
            status["geocoding_reason"] = "the activity has no start coordinates"
        elif weather is not None:
            report.weather_enriched += 1
            status |= {"weather": True, "weather_status": "enriched"}
        else:
            why = statuses[key]
            report.weather_pending += why.status == "pending"
            report.weather_failed += why.status == "failed"
            report.weather_no_data += why.status == "no_data"
            report.weather_skipped += why.status == "skipped"
            status |= {
                "weather": False,
                "weather_status": why.status,
                "weather_reason": why.reason,
                "weather_retryable": why.retryable,
                "weather_retry_after": _iso(why.retry_after),
            }
        if key is not None:
            status["weather_provider"] = provider.name
            status["weather_hour"] = _iso(key[1])
        notes = quality_notes(row.get("data_quality"))  # absent in files older than the column
        if notes:
            status["data_quality"] = notes
        row["enrichment_status"] = json.dumps(status, sort_keys=True, separators=(",", ":"))
    out = {
        key: pa.Table.from_pylist(rows, schema=ENRICHED_SCHEMA)
        for key, rows in rows_by_part.items()
    }
    return out, report
