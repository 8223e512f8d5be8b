"""A Dagster home with the repository's dagster.yaml, and backfills launched into it as the UI
launches them: for the tests that run the real daemon."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from dagster import AssetKey, DagsterInstance
from dagster._core.execution.backfill import PartitionBackfill
from dagster._core.utils import make_new_backfill_id

from sync_assets.definitions import defs

REPO = Path(__file__).resolve().parents[2]
SYNC_ASSETS = [
    AssetKey("raw_strava_activities"),
    AssetKey("weather_enriched_activities"),
    AssetKey("runs_table"),
]


def dagster_home(parent: Path) -> Path:
    """`parent/dagster_home`, holding the repository's dagster.yaml (the run queue and its
    one-run-per-user limit, as deployed)."""
    home = parent / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    return home


def instance_at(home: Path) -> DagsterInstance:
    """The instance of `home`, without leaving DAGSTER_HOME set in this process."""
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        return DagsterInstance.get()
    finally:
        del os.environ["DAGSTER_HOME"]


def add_backfill(instance: DagsterInstance, partition_keys: list[str], title: str) -> str:
    """A backfill of the three assets over `partition_keys` (`<month>|<user>`), as the UI
    launches one: the daemon makes its runs. Returns its id."""
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(),
        asset_graph=defs.resolve_asset_graph(),
        partition_names=partition_keys,
        asset_selection=SYNC_ASSETS,
        backfill_timestamp=time.time(),
        tags={},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=title,
        description=None,
        run_config=None,
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id
