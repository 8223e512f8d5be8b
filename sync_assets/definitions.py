"""The Dagster code location: assets, the job that syncs them, and their resources.

Resources are built from the environment (see `settings`), so the same definitions serve the
embedded default on a laptop and a production deployment; only variables differ.
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions, EnvVar, define_asset_job

from sync_assets import settings
from sync_assets.assets import raw_strava_activities
from sync_assets.partitions import strava_partitions
from sync_assets.resources import ParquetIOManager, StravaResource, SupabaseResource

STRAVA_SYNC_JOB = "strava_sync"

strava_sync_job = define_asset_job(
    STRAVA_SYNC_JOB,
    selection=AssetSelection.assets(raw_strava_activities),
    partitions_def=strava_partitions,
    description="Fetch a user's months from Strava (one run may cover a range of months).",
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
    assets=[raw_strava_activities],
    jobs=[strava_sync_job],
    resources=build_resources(),
)
