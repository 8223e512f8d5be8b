"""Sensors and schedules of the code location."""

from sync_assets.sensors.enrichment import weather_retry_sensor
from sync_assets.sensors.run_status import (
    reconcile_sync_sessions,
    sync_sessions_on_cancel,
    sync_sessions_on_failure,
    sync_sessions_on_success,
)

all_sensors = [
    sync_sessions_on_success,
    sync_sessions_on_failure,
    sync_sessions_on_cancel,
    reconcile_sync_sessions,
    weather_retry_sensor,
]

__all__ = ["all_sensors"]
