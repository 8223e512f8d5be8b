"""The job's Dagster resources against the sandboxes."""

from __future__ import annotations

from pathlib import Path

from sync_assets_sandbox import SandboxServer, StravaSandbox

from sync_assets.resources import (
    ParquetIOManager,
    StravaResource,
    SupabaseResource,
    WeatherResource,
)


def make_resources(
    sandbox: StravaSandbox,
    server: SandboxServer,
    tmp_path: Path,
    database_url: str | None,
    data_dir: Path,
    weather: dict[str, object] | None = None,
    **strava_options: object,
) -> dict[str, object]:
    """The job's resources against the sandboxes, with short backoffs (tests wait less)."""
    supabase = SupabaseResource(database_url=database_url, data_dir=str(data_dir))
    weather_options: dict[str, object] = {
        "api_url": server.weather_url,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.05,
        "max_wait_seconds": 5.0,
    }
    weather_options.update(weather or {})
    return {
        "strava": StravaResource(
            **{
                "client_id": sandbox.client_id,
                "client_secret": sandbox.client_secret,
                "api_url": server.api_url,
                "oauth_url": server.oauth_url,
                "max_wait_seconds": 30,
                "backoff_base_seconds": 0.01,
                "backoff_max_seconds": 0.05,
                **strava_options,
            },
            supabase=supabase,
        ),
        "weather": WeatherResource(**weather_options),
        "parquet_io_manager": ParquetIOManager(base_path=str(tmp_path / "parquet")),
        "supabase": supabase,
    }
