"""The partitioning shared by every asset: one Strava user x one calendar month (UTC).

Partition keys are Dagster multi-partition keys with the dimensions in name order,
`<month>|<user>`, e.g. `2016-03-01|6f1c...`: the core's window keys (`sync_assets.core.windows`,
re-exported here). A run may cover a *range* of them (a single-run backfill).
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import (
    AssetExecutionContext,
    DynamicPartitionsDefinition,
    MonthlyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    PartitionKeyRange,
)

from sync_assets.core.windows import (
    FIRST_MONTH,
    MONTH_DIM,
    USER_DIM,
    SyncSpan,
    month_key,
    month_start,
    next_month,
    split_key,
    sync_spans,
    validate_user_id,
    window_key,
)
from sync_assets.dagster_private import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

USERS_PARTITIONS_NAME = "strava_users"

user_partitions = DynamicPartitionsDefinition(name=USERS_PARTITIONS_NAME)
# end_offset=1: the month in progress is a partition too, so incremental syncs have a home.
month_partitions = MonthlyPartitionsDefinition(start_date=FIRST_MONTH, timezone="UTC", end_offset=1)
strava_partitions = MultiPartitionsDefinition(
    {USER_DIM: user_partitions, MONTH_DIM: month_partitions}
)


def partition_key(user_id: str, month: str) -> MultiPartitionKey:
    """The Dagster key of a user's month (its string is `window_key(user_id, month)`)."""
    return MultiPartitionKey({USER_DIM: user_id, MONTH_DIM: month})


def run_partition_keys(context: AssetExecutionContext) -> Sequence[str]:
    """The partition keys this run materializes.

    For range runs the run tags are the source of truth: some Dagster versions handed daemon
    launched multi-partition range runs a context holding only the first key (dagster#28861,
    #30786). We expand the tagged range ourselves and fall back to the context otherwise.
    """
    tags = context.run.tags
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if start and end:
        return strava_partitions.get_partition_keys_in_range(
            PartitionKeyRange(start, end), dynamic_partitions_store=context.instance
        )
    return list(context.partition_keys)


__all__ = [
    "FIRST_MONTH",
    "MONTH_DIM",
    "USERS_PARTITIONS_NAME",
    "USER_DIM",
    "SyncSpan",
    "month_key",
    "month_partitions",
    "month_start",
    "next_month",
    "partition_key",
    "run_partition_keys",
    "split_key",
    "strava_partitions",
    "sync_spans",
    "user_partitions",
    "validate_user_id",
    "window_key",
]
