"""Sensors and schedules of the code location."""

from sync_assets.sensors.alerts import sync_health_sensor
from sync_assets.sensors.enrichment import weather_retry_sensor
from sync_assets.sensors.new_users import new_strava_users
from sync_assets.sensors.run_status import (
    reconcile_sync_sessions,
    sync_sessions_on_cancel,
    sync_sessions_on_failure,
    sync_sessions_on_success,
)
from sync_assets.sensors.schedules import incremental_sync
from sync_assets.sensors.webhooks import strava_webhook_events

all_sensors = [
    sync_sessions_on_success,
    sync_sessions_on_failure,
    sync_sessions_on_cancel,
    reconcile_sync_sessions,
    weather_retry_sensor,
    new_strava_users,
    strava_webhook_events,
    sync_health_sensor,
]
all_schedules = [incremental_sync]

__all__ = ["all_schedules", "all_sensors"]
