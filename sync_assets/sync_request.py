"""The seed's `SyncRequest` options as Dagster run config: `SyncOptions`.

The seed asks for a sync with `{userId, timeRange, options: {batchSize, maxRetries,
skipWeatherEnrichment}}`. Here the user and time range are the run's partition range (a
user's months, whole), and the options are the `config` of each of the sync's three assets:
the same `SyncOptions` on `raw_strava_activities`, `weather_enriched_activities` and
`runs_table`, so the launchpad shows them (with their defaults) on each, and `run_config`
(`options_run_config`) gives all three the same values. A run without them behaves as
before: every field's default is the pipeline's own.

Bad values (a batch size below 1, fewer than 1 retry) are refused by the model's validation:
`sync-assets sync`, the sensors and the schedule check them before they ask for a run, and
this project's instance class (`logs.JsonLogsInstance`, named by every dagster.yaml here)
refuses to create a run with them (`refuse_bad_options`: the launchpad checks only their
types). On another instance such a run fails its first step before it reads or writes
anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dagster import Config
from pydantic import Field, ValidationError

from sync_assets.core import settings
from sync_assets.core.storage.sqlstore import BATCH_SIZE

# The assets of the `strava_sync` job, each taking `SyncOptions` as its config.
SYNC_OPTION_ASSETS = ("raw_strava_activities", "weather_enriched_activities", "runs_table")
# Of the weather-only job (`weather_enrichment`): no Strava listing.
ENRICHMENT_OPTION_ASSETS = ("weather_enriched_activities", "runs_table")
MAX_BATCH_SIZE = 100_000
MAX_RETRIES_LIMIT = 20


class SyncOptions(Config):
    """How one sync runs (the seed's `SyncRequest.options`); defaults change nothing."""

    batch_size: int = Field(
        default=BATCH_SIZE,
        gt=0,
        le=MAX_BATCH_SIZE,
        description="rows `runs_table` upserts per database transaction (the seed's "
        f"batchSize; 1 to {MAX_BATCH_SIZE:,})",
    )
    max_retries: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RETRIES_LIMIT,
        description="retries of a failed Strava or weather request (network errors, 5xx, "
        "broken bodies) before the client gives up (the seed's maxRetries; unset: the "
        "resources' own, 5 for Strava and 3 for the weather)",
    )
    skip_weather_enrichment: bool = Field(
        default=False,
        description="store the activities without asking for their weather (the session goes "
        "fetching_activities -> storing_data); their enrichment_status says `skipped` and the "
        "weather retry sensor or `sync-assets enrich` fills them in later",
    )


def option_error(err: ValidationError) -> str:
    """One line naming each refused option and why (pydantic's message, without its URL)."""
    parts = []
    for e in err.errors():
        name = ".".join(str(p) for p in e["loc"]) or "options"
        parts.append(f"{name} {e.get('input')!r}: {e['msg']}")
    return "; ".join(parts)


def checked_options(**values: Any) -> SyncOptions:
    """`SyncOptions` of the values given (None: the default); ValueError in one line."""
    try:
        return SyncOptions(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as err:
        raise ValueError(f"bad sync option: {option_error(err)}") from None


def refuse_bad_options(run_config: Mapping[str, Any] | None) -> None:
    """ValueError in one line if `run_config` gives a sync asset options `SyncOptions` refuses
    (Dagster's config schema checks only their types). Called as a run is created
    (`logs.JsonLogsInstance.create_run`), so that a bad value from the launchpad, a sensor or
    a re-execution makes no run at all."""
    ops = (run_config or {}).get("ops") or {}
    for asset in SYNC_OPTION_ASSETS:
        config = (ops.get(asset) or {}).get("config") if isinstance(ops, Mapping) else None
        if not isinstance(config, Mapping):
            continue
        try:
            SyncOptions(**config)
        except ValidationError as err:
            raise ValueError(f"bad sync option of {asset}: {option_error(err)}") from None


def months_of_range(after: int | None, before: int | None) -> tuple[str | None, str | None]:
    """The seed's `timeRange` (Unix seconds; `after` and `before` exclusive, as Strava's
    listing) as the run's months, YYYY-MM (None: the default end): the months the range
    touches, whole, since a month is one partition, always synced whole."""
    if after is not None and before is not None and after >= before:
        raise ValueError(f"--after {after} is not before --before {before}")
    first = _month(after) if after is not None else None
    last = _month(before - 1) if before is not None else None
    return first, last


def _month(epoch: int) -> str:
    from datetime import UTC, datetime

    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m")
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{epoch} is not a Unix time in seconds") from None


def options_run_config(
    options: SyncOptions, assets: Iterable[str] = SYNC_OPTION_ASSETS
) -> dict[str, Any]:
    """The `ops` run config giving every asset of `assets` the same options; only the fields
    that differ from the defaults, so a default request's config stays empty."""
    values = options.model_dump(exclude_defaults=True)
    if not values:
        return {}
    return {"ops": {asset: {"config": dict(values)} for asset in assets}}


def options_from_env() -> SyncOptions:
    """The options of the runs the sensors and the schedule ask for:
    `SYNC_ASSETS_BATCH_SIZE`, `SYNC_ASSETS_MAX_RETRIES`, `SYNC_ASSETS_SKIP_WEATHER` (true);
    unset: the defaults. A bad value raises (the tick fails and says why, no run is asked)."""
    return checked_options(
        batch_size=settings.sync_batch_size(),
        max_retries=settings.sync_max_retries(),
        skip_weather_enrichment=settings.sync_skip_weather() or None,
    )
