"""The partitioning shared by every asset: one Strava user x one calendar month (UTC).

Partition keys are Dagster multi-partition keys with the dimensions in name order,
`<month>|<user>`, e.g. `2016-03-01|6f1c...`. A run may cover a *range* of them (a single-run
backfill); `sync_spans` turns whatever keys a run holds into the fewest Strava queries: one per
user and contiguous block of months.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from dagster import (
    AssetExecutionContext,
    DynamicPartitionsDefinition,
    MonthlyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    PartitionKeyRange,
)

from sync_assets.dagster_private import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

USERS_PARTITIONS_NAME = "strava_users"
FIRST_MONTH = "2009-01-01"  # Strava's launch; nothing older is partitioned
USER_DIM = "user"
MONTH_DIM = "month"

user_partitions = DynamicPartitionsDefinition(name=USERS_PARTITIONS_NAME)
# end_offset=1: the month in progress is a partition too, so incremental syncs have a home.
month_partitions = MonthlyPartitionsDefinition(start_date=FIRST_MONTH, timezone="UTC", end_offset=1)
strava_partitions = MultiPartitionsDefinition(
    {USER_DIM: user_partitions, MONTH_DIM: month_partitions}
)

_USER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


def validate_user_id(user_id: str) -> str:
    """User ids become partition keys: Dagster forbids `|` and `,` there, so be strict."""
    if not _USER_ID_RE.match(user_id):
        raise ValueError(
            f"invalid user id {user_id!r}: use the app's user id (a uuid); letters, digits and "
            "_.:@- only, at most 128 characters"
        )
    return user_id


def month_start(dt: datetime) -> datetime:
    dt = dt.astimezone(UTC)
    return datetime(dt.year, dt.month, 1, tzinfo=UTC)


def next_month(dt: datetime) -> datetime:
    return datetime(dt.year + dt.month // 12, dt.month % 12 + 1, 1, tzinfo=UTC)


def month_key(dt: datetime) -> str:
    """The `month` dimension key of the month holding `dt` (UTC)."""
    return month_start(dt).strftime("%Y-%m-%d")


def partition_key(user_id: str, month: str) -> MultiPartitionKey:
    return MultiPartitionKey({USER_DIM: user_id, MONTH_DIM: month})


@dataclass(frozen=True)
class SyncSpan:
    """One user's contiguous block of months: fetched with one paginated Strava query."""

    user_id: str
    months: tuple[str, ...]

    @property
    def start(self) -> datetime:
        return datetime.strptime(self.months[0], "%Y-%m-%d").replace(tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive end: the first instant of the month after the last one."""
        last = datetime.strptime(self.months[-1], "%Y-%m-%d").replace(tzinfo=UTC)
        return next_month(last)

    @property
    def id(self) -> str:
        """The listing's name in `sync_staging`: its window."""
        return f"{self.start.isoformat()}/{self.end.isoformat()}"

    def partition_keys(self) -> list[str]:
        return [str(partition_key(self.user_id, m)) for m in self.months]


def split_key(key: str) -> tuple[str, str]:
    """`'2016-03-01|u1'` -> `('u1', '2016-03-01')`."""
    mpk = strava_partitions.get_partition_key_from_str(key)
    dims = mpk.keys_by_dimension
    return dims[USER_DIM], dims[MONTH_DIM]


def sync_spans(keys: Iterable[str]) -> list[SyncSpan]:
    """Group partition keys into per-user runs of consecutive months."""
    by_user: dict[str, set[str]] = {}
    for key in keys:
        user, month = split_key(key)
        by_user.setdefault(user, set()).add(month)
    spans: list[SyncSpan] = []
    for user in sorted(by_user):
        block: list[str] = []
        for month in sorted(by_user[user]):
            if block:
                expected = next_month(datetime.strptime(block[-1], "%Y-%m-%d").replace(tzinfo=UTC))
                if month != expected.strftime("%Y-%m-%d"):
                    spans.append(SyncSpan(user, tuple(block)))
                    block = []
            block.append(month)
        if block:
            spans.append(SyncSpan(user, tuple(block)))
    return spans


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
