"""Parquet per partition, on any filesystem fsspec knows (local folder by default, s3://...).

Dagster's `UPathIOManager` refuses an output that covers several partitions, which is exactly
what a single-run backfill produces. This IO manager accepts a dict keyed by partition key for
such runs and writes each partition to its own folder, so a year of one user is fetched with
one query and still stored (and later read) month by month.

`raw_strava_activities` does not hand its months over at the end: it writes each one while the
listing runs (`ParquetPartitionSink`, at the paths this IO manager reads), so a whole history
is never in memory, and returns `WrittenPartition` references that `handle_output` checks and
records instead of writing.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import (
    AssetKey,
    ConfigurableIOManagerFactory,
    InputContext,
    MetadataValue,
    OutputContext,
    UPathIOManager,
)
from pydantic import Field
from upath import UPath
from upath.implementations.local import PosixUPath, WindowsUPath

from sync_assets.core.files import temporary_beside
from sync_assets.core.ingest import CollectedPartitions
from sync_assets.core.models import ACTIVITY_SCHEMA, QUARANTINE_SCHEMA, PartitionData
from sync_assets.core.windows import split_key

ACTIVITIES_FILE = "activities.parquet"
QUARANTINE_FILE = "quarantine.parquet"


def by_partition(keys: list[str], loaded: Any) -> dict[str, PartitionData]:
    """An input of this IO manager keyed by partition: it hands one partition as itself and
    several as a dict keyed by partition key."""
    if isinstance(loaded, Mapping):
        return {key: loaded[key] for key in keys if key in loaded}
    return {keys[0]: loaded}


def _write(table: pa.Table, path: UPath) -> None:
    """`table` at `path`, whole: written under a temporary name of its own (process id and a
    random part: two writers of one partition never share one), then moved over `path` in
    one step, so a reader sees the old file or the new one and two writers at once leave the
    last one's. Locally `os.replace` (atomic, and it replaces an existing file everywhere,
    where `rename` fails on Windows); elsewhere the filesystem's move (an object store's PUT
    of a whole object is atomic in the same sense)."""
    tmp = path.with_name(temporary_beside(path.name))
    try:
        with tmp.open("wb") as fh:
            pq.write_table(table, fh)
        if isinstance(path, PosixUPath | WindowsUPath):
            os.replace(tmp, path)
        else:
            tmp.rename(path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise


def write_partition(data: PartitionData, path: UPath) -> None:
    """One partition's two files (accepted, quarantined) in its folder, each atomically."""
    path.mkdir(parents=True, exist_ok=True)
    _write(data.activities, path / ACTIVITIES_FILE)
    _write(data.quarantine, path / QUARANTINE_FILE)


@dataclass(frozen=True)
class WrittenPartition:
    """A partition already written where the IO manager keeps it: what an output holds in
    place of the tables (`handle_output` checks the path and records the counts)."""

    path: str
    activities: int
    quarantined: int


def _read(path: UPath, schema: pa.Schema) -> pa.Table:
    if not path.exists():
        return schema.empty_table()
    with path.open("rb") as fh:
        return _with_new_columns(pq.read_table(fh), schema)


def _with_new_columns(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A file written before a column of `schema` existed gets it, null, where `schema` has it
    (so old and new partitions concatenate). An enriched file keeps its extra columns after."""
    for i, f in enumerate(schema):
        if f.name not in table.column_names:
            table = table.add_column(min(i, table.num_columns), f, pa.nulls(table.num_rows, f.type))
    return table


class PartitionedParquetIOManager(UPathIOManager):
    extension = ""

    def partition_path(self, asset_key: AssetKey, key: str) -> UPath:
        """Where a partition (`<month>|<user>`) of `asset_key` lives: Dagster's layout for a
        multi-partition key (dimensions in name order), which `handle_output` checks."""
        user, month = split_key(key)
        asset_path = self._base_path.joinpath(*asset_key.path)
        return self.make_safe_partition_path(asset_path, f"{month}/{user}")

    def dump_to_path(self, context: OutputContext, obj: PartitionData, path: UPath) -> None:
        write_partition(obj, path)

    def load_from_path(self, context: InputContext, path: UPath) -> PartitionData:
        return PartitionData(
            _read(path / ACTIVITIES_FILE, ACTIVITY_SCHEMA),
            _read(path / QUARANTINE_FILE, QUARANTINE_SCHEMA),
        )

    def load_partitions(self, context: InputContext) -> PartitionData | dict[str, PartitionData]:
        """The input's partitions, one file pair each, with one log line for them all.

        `UPathIOManager` logs a debug line per partition loaded, and each line is an event in
        the instance's log: a whole history (216 months) cost 432 event writes between the
        three steps. A partition whose files are missing loads as empty (`_read`), as before.
        """
        paths = self._get_paths_for_partitions(context)
        keys = context.asset_partition_keys
        first = paths[keys[0]]
        if len(keys) == 1:
            context.log.debug(f"Loading partition {keys[0]} from {first}")
            return self.load_from_path(context, first)
        context.log.debug(f"Loading {len(keys)} partitions from {first.parent.parent}")
        return {key: self.load_from_path(context, paths[key]) for key in keys}

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if not context.has_asset_partitions:
            return super().handle_output(context, obj)
        paths = self._get_paths_for_partitions(context)
        if not isinstance(obj, Mapping):
            if len(paths) != 1:
                raise TypeError(
                    "an output covering several partitions must be a dict keyed by partition key"
                )
            obj = {next(iter(paths)): obj}
        missing = set(paths) - set(obj)
        if missing:
            raise ValueError(f"output lacks partitions {sorted(missing)[:5]}")
        rows = quarantined = 0
        for key, path in paths.items():
            data: PartitionData | WrittenPartition = obj[key]
            if isinstance(data, WrittenPartition):
                if data.path != str(path):  # a layout of ours that is not Dagster's: loudly
                    raise ValueError(f"partition {key} was written to {data.path}, not {path}")
                rows += data.activities
                quarantined += data.quarantined
                continue
            self.dump_to_path(context, data, path)
            rows += data.activities.num_rows
            quarantined += data.quarantine.num_rows
        first = next(iter(paths.values()))
        context.add_output_metadata(
            {
                "path": MetadataValue.path(
                    str(first) if len(paths) == 1 else str(first.parent.parent)
                ),
                "partitions_written": len(paths),
                "rows_written": rows,
                "quarantine_rows_written": quarantined,
            }
        )


@dataclass
class ParquetPartitionSink:
    """The fetch's `PartitionSink` for one asset: each month written as soon as it is
    complete, at the IO manager's path; `outputs` are the references the asset returns.

    A month written by a run that fails later stays written (it is complete: the listing was
    past it) without a materialization; the next run writes it again."""

    io_manager: PartitionedParquetIOManager
    asset_key: AssetKey
    outputs: dict[str, WrittenPartition] = field(default_factory=dict)

    def write(self, key: str, data: PartitionData) -> None:
        path = self.io_manager.partition_path(self.asset_key, key)
        write_partition(data, path)
        self.outputs[key] = WrittenPartition(
            str(path), data.activities.num_rows, data.quarantine.num_rows
        )


@dataclass
class CollectingSink(CollectedPartitions):
    """The sink for any other IO manager: the tables are kept and handed over at the end."""

    @property
    def outputs(self) -> dict[str, PartitionData]:
        return self.partitions


def partition_sink(io_manager: Any, asset_key: AssetKey) -> ParquetPartitionSink | CollectingSink:
    """The sink an asset of `io_manager` writes its partitions through while it fetches."""
    if isinstance(io_manager, PartitionedParquetIOManager):
        return ParquetPartitionSink(io_manager, asset_key)
    return CollectingSink()


class ParquetIOManager(ConfigurableIOManagerFactory):
    """Where partitions are written: a local folder, or any fsspec URL (s3://, gs://, ...)."""

    base_path: str = Field(description="root folder or URL of the Parquet files")

    def create_io_manager(self, context: Any) -> PartitionedParquetIOManager:
        return PartitionedParquetIOManager(base_path=UPath(self.base_path))


def delete_user_files(base_path: str, user_id: str) -> int:
    """Remove every partition folder of one user, in every asset (`<asset>/<month>/<user>`)."""
    removed = 0
    for folder in UPath(base_path).glob(f"*/*/{user_id}"):
        for path in sorted(folder.rglob("*"), key=lambda p: -len(p.parts)):
            if path.is_file():
                path.unlink()
            else:
                path.rmdir()
        folder.rmdir()
        removed += 1
    return removed
