"""Environment-driven settings: the only place that reads `os.environ`."""

from __future__ import annotations

import os
from pathlib import Path

from sync_assets.core.clients.strava import DEFAULT_API_URL, DEFAULT_OAUTH_URL
from sync_assets.core.clients.weather import (
    OPEN_METEO_ARCHIVE_URL,
    OPENWEATHERMAP_TIMEMACHINE_URL,
)


def data_dir() -> Path:
    """`SYNC_ASSETS_HOME`, default `~/.sync_assets`: connections, Parquet files, Dagster home."""
    return Path(os.environ.get("SYNC_ASSETS_HOME", "~/.sync_assets")).expanduser().resolve()


def database_url() -> str | None:
    """`DATABASE_URL`: Supabase/PostgreSQL; unset means the embedded SQLite default."""
    return os.environ.get("DATABASE_URL") or None


def storage_url() -> str:
    """`SYNC_ASSETS_STORAGE_URL`: where Parquet partitions go (a folder or any fsspec URL)."""
    return os.environ.get("SYNC_ASSETS_STORAGE_URL") or str(data_dir() / "parquet")


def strava_api_url() -> str:
    return os.environ.get("STRAVA_API_URL") or DEFAULT_API_URL


def strava_oauth_url() -> str:
    return os.environ.get("STRAVA_OAUTH_URL") or DEFAULT_OAUTH_URL


def strava_max_wait_seconds() -> float:
    return float(os.environ.get("STRAVA_MAX_WAIT_SECONDS") or 900)


def weather_provider() -> str:
    """`WEATHER_PROVIDER`: `open-meteo` (default, no key) or `openweathermap`."""
    return os.environ.get("WEATHER_PROVIDER") or "open-meteo"


def weather_api_url() -> str:
    """`WEATHER_API_URL`: the provider's endpoint (its public one by default)."""
    default = (
        OPENWEATHERMAP_TIMEMACHINE_URL
        if weather_provider() == "openweathermap"
        else OPEN_METEO_ARCHIVE_URL
    )
    return os.environ.get("WEATHER_API_URL") or default


def openweathermap_api_key_set() -> bool:
    return bool(os.environ.get("OPENWEATHERMAP_API_KEY"))


def incremental_cron() -> str:
    """`SYNC_ASSETS_INCREMENTAL_CRON`: when the incremental schedule ticks (hourly)."""
    return os.environ.get("SYNC_ASSETS_INCREMENTAL_CRON") or "5 * * * *"


def incremental_hours() -> int:
    """`SYNC_ASSETS_INCREMENTAL_HOURS`: how often each user's current month is synced."""
    return int(os.environ.get("SYNC_ASSETS_INCREMENTAL_HOURS") or 24)


def incremental_share() -> float:
    """`SYNC_ASSETS_INCREMENTAL_SHARE`: the part of the daily read budget incremental syncs use."""
    return float(os.environ.get("SYNC_ASSETS_INCREMENTAL_SHARE") or 0.8)


def incremental_lookback_hours() -> float:
    """`SYNC_ASSETS_INCREMENTAL_LOOKBACK_HOURS` (72): how far before the user's last complete
    listing an incremental sync lists again. Strava's `after` filters on the start date, and an
    activity can reach Strava long after it started (a watch synced the next day, a phone
    without signal over a weekend): within this many hours it is still found."""
    return float(os.environ.get("SYNC_ASSETS_INCREMENTAL_LOOKBACK_HOURS") or 72)


def strava_read_daily_limit() -> int:
    """`STRAVA_READ_DAILY_LIMIT`: the app's daily read limit (Strava's default: 1,000)."""
    return int(os.environ.get("STRAVA_READ_DAILY_LIMIT") or 1000)


def webhooks_enabled() -> bool:
    """`STRAVA_WEBHOOKS=on`: a push subscription feeds `strava_webhook_events`, so incremental
    syncs skip users without news."""
    return (os.environ.get("STRAVA_WEBHOOKS") or "off").lower() in ("on", "true", "1", "yes")


def _whole_number(name: str) -> int | None:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None


def sync_batch_size() -> int | None:
    """`SYNC_ASSETS_BATCH_SIZE`: the sensors' and schedule's runs' `SyncOptions.batch_size`
    (unset: the default, 5000 rows per store transaction)."""
    return _whole_number("SYNC_ASSETS_BATCH_SIZE")


def sync_max_retries() -> int | None:
    """`SYNC_ASSETS_MAX_RETRIES`: their `SyncOptions.max_retries` (unset: the clients' own)."""
    return _whole_number("SYNC_ASSETS_MAX_RETRIES")


def sync_skip_weather() -> bool:
    """`SYNC_ASSETS_SKIP_WEATHER=true`: their runs store without weather (`skipped`)."""
    value = (os.environ.get("SYNC_ASSETS_SKIP_WEATHER") or "").strip().lower()
    if value not in ("", "0", "false", "no", "off", "1", "true", "yes", "on"):
        raise ValueError(f"SYNC_ASSETS_SKIP_WEATHER must be true or false, not {value!r}")
    return value in ("1", "true", "yes", "on")


def executor() -> str:
    """`SYNC_ASSETS_EXECUTOR`: `celery` to run steps on Celery workers; default: Dagster's."""
    return (os.environ.get("SYNC_ASSETS_EXECUTOR") or "default").lower()


def log_format() -> str:
    """`SYNC_ASSETS_LOG_FORMAT`: `json` (default: one JSON object per line with the sync id,
    `sync_assets.logs`) or `text` (Dagster's colored console logger)."""
    value = (os.environ.get("SYNC_ASSETS_LOG_FORMAT") or "json").strip().lower()
    if value not in ("json", "text"):
        raise ValueError(f"SYNC_ASSETS_LOG_FORMAT must be json or text, not {value!r}")
    return value


def log_level() -> str | None:
    """`SYNC_ASSETS_LOG_LEVEL` (e.g. `DEBUG`): the JSON logger's level, over the run config's."""
    return os.environ.get("SYNC_ASSETS_LOG_LEVEL") or None


def reconcile_seconds() -> int:
    """How often `reconcile_sync_sessions` looks for dead runs and open sessions (seconds;
    read when the code location loads)."""
    return int(os.environ.get("SYNC_ASSETS_RECONCILE_SECONDS") or 60)


def db_retry_attempts() -> int:
    """`SYNC_ASSETS_DB_RETRY_ATTEMPTS` (6): tries of a store operation whose database
    connection dropped (a failover, a pooler restart), each on a fresh connection."""
    return max(int(os.environ.get("SYNC_ASSETS_DB_RETRY_ATTEMPTS") or 6), 1)


def db_retry_seconds() -> float:
    """`SYNC_ASSETS_DB_RETRY_SECONDS` (30): how long those tries may take in all before the
    step fails with a retryable `DATABASE` error."""
    return float(os.environ.get("SYNC_ASSETS_DB_RETRY_SECONDS") or 30)


def user_lease_seconds() -> float:
    """`SYNC_ASSETS_USER_LEASE_SECONDS` (300): how long a run's hold on a user outlives its
    last heartbeat (a run whose process died frees the user after this)."""
    return float(os.environ.get("SYNC_ASSETS_USER_LEASE_SECONDS") or 300)


def user_wait_seconds() -> float:
    """`SYNC_ASSETS_USER_WAIT_SECONDS` (3600): how long a run waits for another run of the same
    user to end before it fails with a retryable error."""
    return float(os.environ.get("SYNC_ASSETS_USER_WAIT_SECONDS") or 3600)
