"""The run requests every sensor and schedule here makes: one run over a user's months."""

from collections.abc import Mapping

from dagster import RunRequest

from sync_assets.core.sessions import SYNC_TYPE_TAG
from sync_assets.dagster_private import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from sync_assets.logs import RUN_CONFIG
from sync_assets.partitions import partition_key
from sync_assets.user_runs import USER_TAG


def range_run_request(
    job_name: str,
    user_id: str,
    first: str,
    last: str,
    *,
    run_key: str,
    sync_type: str,
    tags: Mapping[str, str] | None = None,
) -> RunRequest:
    """A single run over `user_id`'s months `first`..`last` (range tags, as backfills use);
    `tags`: more of them."""
    return RunRequest(
        run_key=run_key,
        job_name=job_name,
        run_config=RUN_CONFIG,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: str(partition_key(user_id, first)),
            ASSET_PARTITION_RANGE_END_TAG: str(partition_key(user_id, last)),
            SYNC_TYPE_TAG: sync_type,
            USER_TAG: user_id,  # the run queue starts one run per user at a time
            **(tags or {}),
        },
    )
