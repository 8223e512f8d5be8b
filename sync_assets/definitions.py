"""The Dagster code location: assets, the job that syncs them, and their resources.

Resources are built from the environment (see `settings`), so the same definitions serve the
embedded default on a laptop and a production deployment; only variables differ.
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions, EnvVar, define_asset_job

from sync_assets import settings
from sync_assets.assets import raw_strava_activities, runs_table
from sync_assets.resources import ParquetIOManager, StravaResource, SupabaseResource
from sync_assets.sensors import all_sensors

STRAVA_SYNC_JOB = "strava_sync"

strava_sync_job = define_asset_job(
    STRAVA_SYNC_JOB,
    selection=AssetSelection.assets(raw_strava_activities, runs_table),
    description="Sync a user's months from Strava into `runs` (one run may cover a range).",
)


def build_resources() -> dict[str, object]:
    supabase = SupabaseResource(
        database_url=EnvVar("DATABASE_URL") if settings.database_url() else None,
        data_dir=str(settings.data_dir()),
    )
    return {
        "strava": StravaResource(
            client_id=EnvVar("STRAVA_CLIENT_ID"),
            client_secret=EnvVar("STRAVA_CLIENT_SECRET"),
            api_url=settings.strava_api_url(),
            oauth_url=settings.strava_oauth_url(),
            max_wait_seconds=settings.strava_max_wait_seconds(),
            supabase=supabase,
        ),
        "supabase": supabase,
        "parquet_io_manager": ParquetIOManager(base_path=settings.storage_url()),
    }


defs = Definitions(
    assets=[raw_strava_activities, runs_table],
    sensors=all_sensors,
    jobs=[strava_sync_job],
    resources=build_resources(),
)
