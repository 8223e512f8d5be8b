"""`sync_health_sensor`: the alerts, evaluated every few minutes, as `sync_health`'s checks.

A sensor rather than a scheduled run: evaluating the alerts reads a few rows and must not
fill the run history (or take a run slot) every five minutes. Each tick records one check
evaluation per alert, so the asset page shows the latest verdict and its history; a fired
alert is a failed check (severity ERROR) whose description is the figure, and a warning in
the tick's log.
"""

import logging

from dagster import (
    AssetCheckEvaluation,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from sync_assets.assets.health import SYNC_HEALTH, check_result, evaluate_all
from sync_assets.resources.strava import StravaResource
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.resources.weather import WeatherResource


def check_evaluations(
    supabase: SupabaseResource,
    strava: StravaResource,
    weather: WeatherResource,
    log: logging.Logger | None = None,
) -> list[AssetCheckEvaluation]:
    """Every alert as a check evaluation of `sync_health`, a fired one also a warning."""
    evaluations = []
    for alert in evaluate_all(supabase, strava, weather):
        if alert.fired and log is not None:
            log.warning(f"alert {alert.name}: {alert.figure}")
        result = check_result(alert)
        evaluations.append(
            AssetCheckEvaluation(
                asset_key=SYNC_HEALTH,
                check_name=alert.name,
                passed=result.passed,
                metadata=result.metadata,
                severity=result.severity,
                description=result.description,
            )
        )
    return evaluations


@sensor(
    name="sync_health_sensor",
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
    description="Evaluates the alerts (sync_health's checks) every 5 minutes.",
)
def sync_health_sensor(
    context: SensorEvaluationContext,
    supabase: SupabaseResource,
    strava: StravaResource,
    weather: WeatherResource,
) -> SensorResult:
    """Needs no Strava secret: without `STRAVA_CLIENT_ID` the quota check evaluates the weather
    half and says it skipped Strava's (`health.strava_usage`); no tick fails over a setting."""
    return SensorResult(asset_events=check_evaluations(supabase, strava, weather, context.log))
