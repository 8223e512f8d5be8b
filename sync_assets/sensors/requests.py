"""The run requests every sensor and schedule here makes: one run over a user's months."""

from collections.abc import Mapping

from dagster import RunRequest

from sync_assets.core.sessions import SYNC_TYPE_TAG
from sync_assets.dagster_private import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from sync_assets.job_names import STRAVA_SYNC_JOB, WEATHER_ENRICHMENT_JOB
from sync_assets.logs import RUN_CONFIG
from sync_assets.partitions import partition_key
from sync_assets.sync_request import (
    ENRICHMENT_OPTION_ASSETS,
    SYNC_OPTION_ASSETS,
    SyncOptions,
    options_from_env,
    options_run_config,
)
from sync_assets.user_runs import USER_TAG

# The assets of each job that take `SyncOptions`.
OPTION_ASSETS = {
    STRAVA_SYNC_JOB: SYNC_OPTION_ASSETS,
    WEATHER_ENRICHMENT_JOB: ENRICHMENT_OPTION_ASSETS,
}


def run_config_for(job_name: str, options: SyncOptions | None = None) -> dict[str, object]:
    """The run config of a requested run: the JSON logger's, and the sync options
    (`options`, else the environment's, `options_from_env`) where they differ from the
    defaults. A weather-only run never skips the weather: it is what it is for."""
    options = options if options is not None else options_from_env()
    if job_name == WEATHER_ENRICHMENT_JOB:
        options = options.model_copy(update={"skip_weather_enrichment": False})
    return {**RUN_CONFIG, **options_run_config(options, OPTION_ASSETS.get(job_name, ()))}


def range_run_request(
    job_name: str,
    user_id: str,
    first: str,
    last: str,
    *,
    run_key: str,
    sync_type: str,
    tags: Mapping[str, str] | None = None,
    options: SyncOptions | None = None,
) -> RunRequest:
    """A single run over `user_id`'s months `first`..`last` (range tags, as backfills use);
    `tags`: more of them; `options`: the run's `SyncOptions` (None: the environment's)."""
    return RunRequest(
        run_key=run_key,
        job_name=job_name,
        run_config=run_config_for(job_name, options),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: str(partition_key(user_id, first)),
            ASSET_PARTITION_RANGE_END_TAG: str(partition_key(user_id, last)),
            SYNC_TYPE_TAG: sync_type,
            USER_TAG: user_id,  # the run queue starts one run per user at a time
            **(tags or {}),
        },
    )
