"""The Dagster code location: assets, the job that syncs them, and their resources.

Resources are built from the environment (see `settings`), so the same definitions serve the
embedded default on a laptop and a production deployment; only variables differ.
"""

from __future__ import annotations

from dagster import (
    AssetSelection,
    Definitions,
    EnvVar,
    ExecutorDefinition,
    LoggerDefinition,
    define_asset_job,
)

from sync_assets.assets import raw_strava_activities, runs_table, weather_enriched_activities
from sync_assets.assets.health import health_checks, sync_health
from sync_assets.core import settings
from sync_assets.core.sessions import SYNC_TYPE_TAG
from sync_assets.job_names import STRAVA_SYNC_JOB, WEATHER_ENRICHMENT_JOB
from sync_assets.logs import RUN_CONFIG
from sync_assets.resources import (
    ParquetIOManager,
    StravaResource,
    SupabaseResource,
    WeatherResource,
)
from sync_assets.sensors import all_schedules, all_sensors

strava_sync_job = define_asset_job(
    STRAVA_SYNC_JOB,
    selection=AssetSelection.assets(raw_strava_activities, weather_enriched_activities, runs_table),
    config=RUN_CONFIG,
    description="Sync a user's months from Strava into `runs`, with place and weather (one run "
    "may cover a range).",
)

weather_enrichment_job = define_asset_job(
    WEATHER_ENRICHMENT_JOB,
    selection=AssetSelection.assets(weather_enriched_activities, runs_table),
    config=RUN_CONFIG,
    tags={SYNC_TYPE_TAG: "enrichment"},
    description="Re-enrich stored activities (weather pending, failed or skipped) and update "
    "`runs`: reads the fetched activities back from Parquet, never calls Strava.",
)


def _env_or_unset(name: str) -> EnvVar | str:
    """`EnvVar(name)` when the variable is set, else "" (unset): a resource that needs it
    (the Strava fetch) refuses to run and says so, while what does not (the health checks'
    sensor, which needs no Strava secret) still runs. An `EnvVar` of an unset variable would
    fail every use of the resource, needed or not."""
    return EnvVar(name) if EnvVar(name).get_value() else ""


def build_resources() -> dict[str, object]:
    supabase = SupabaseResource(
        database_url=EnvVar("DATABASE_URL") if settings.database_url() else None,
        data_dir=str(settings.data_dir()),
    )
    return {
        "strava": StravaResource(
            client_id=_env_or_unset("STRAVA_CLIENT_ID"),
            client_secret=_env_or_unset("STRAVA_CLIENT_SECRET"),
            api_url=settings.strava_api_url(),
            oauth_url=settings.strava_oauth_url(),
            max_wait_seconds=settings.strava_max_wait_seconds(),
            supabase=supabase,
        ),
        "supabase": supabase,
        "weather": WeatherResource(
            provider=settings.weather_provider(),
            api_url=settings.weather_api_url(),
            api_key=EnvVar("OPENWEATHERMAP_API_KEY")
            if settings.openweathermap_api_key_set()
            else None,
        ),
        "parquet_io_manager": ParquetIOManager(base_path=settings.storage_url()),
    }


def build_executor() -> ExecutorDefinition | None:
    """`SYNC_ASSETS_EXECUTOR=celery`: steps run on Celery workers (dagster-celery; broker in
    `DAGSTER_CELERY_BROKER_URL`, e.g. RabbitMQ); unset: Dagster's default multiprocess executor."""
    if settings.executor() != "celery":
        return None
    from dagster_celery import celery_executor

    return celery_executor.configured(
        {"broker": {"env": "DAGSTER_CELERY_BROKER_URL"}, "backend": "rpc://"}
    )


def build_loggers() -> dict[str, LoggerDefinition] | None:
    """`SYNC_ASSETS_LOG_FORMAT=json` (default): every job logs JSON lines with the sync id
    (`sync_assets.logs`); `text`: Dagster's colored console logger.

    The JSON logger takes the key `console`, the key of the logger it replaces, so run config
    written for Dagster's console logger (`sync-assets sync` asks it for warnings only, the
    launchpad scaffolds it) configures this one. Dagster starts a job's loggers only when the
    run config names one; a run whose config names none gets Dagster's colored console logger.
    """
    if settings.log_format() == "text":
        return None
    from sync_assets.logs import sync_assets_logger

    return {"console": sync_assets_logger}


defs = Definitions(
    executor=build_executor(),
    assets=[raw_strava_activities, weather_enriched_activities, runs_table, sync_health],
    asset_checks=health_checks,
    sensors=all_sensors,
    schedules=all_schedules,
    jobs=[strava_sync_job, weather_enrichment_job],
    resources=build_resources(),
    loggers=build_loggers(),
)
