"""The private Dagster names this project depends on, in one audited place.

Product code imports Dagster's public API (`from dagster import ...`) everywhere else; what
follows has no public equivalent in dagster 1.13 (checked against `dagster/__init__.py`, which
exports none of them). Each name says why it is needed and why nothing public replaces it.
Upgrading Dagster: check these first (`grep -rn "dagster\\._" sync_assets` finds only this file).
"""

from collections.abc import Mapping
from typing import Any

from dagster import AssetExecutionContext

# The names Dagster's console logger shows for event types (RUN_START, not the legacy
# PIPELINE_START value of `DagsterEventType.RUN_START`): our JSON lines show the same. The
# public `DagsterEventType` carries only the legacy values; the display mapping is private.
from dagster._core.events import EVENT_TYPE_TO_DISPLAY_STRING

# The metadata Dagster's log handler attaches to each record of a run (run id, job, tags, step,
# the DagsterEvent, the message as logged). A custom `@logger` receives plain
# `logging.LogRecord`s; reading that attribute has no public accessor.
from dagster._core.log_manager import (
    get_log_record_metadata,
    has_log_record_metadata,
)

# Run tags of a partition-range run. Backfills of a `BackfillPolicy.single_run()` asset tag
# their runs with these, and the asset reads them back (`partitions.run_partition_keys`,
# dagster#28861); the sensors and the CLI write them to launch the same kind of run. Dagster
# exports no tag constant but `MAX_RUNTIME_SECONDS_TAG`, and `RunRequest` takes a single
# `partition_key` only (its `partition_key_range` property reads these very tags), so a
# one-run range can be requested only through them. `PARTITION_NAME_TAG` ("dagster/partition")
# is read by the JSON logger to name a single-partition run's partition: no public constant.
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

# A logger config's level ("INFO", "warning", 10, ...) as Python's int, with the same aliases
# and the same error as Dagster's own loggers accept: no public helper.
from dagster._core.utils import coerce_valid_log_level


def instance_config_defaults(base_dir: str):  # noqa: ANN201 - Mapping[str, ConfigurableClassData]
    """The default instance's storages for `base_dir`, which Dagster asks a custom
    `instance_class` (`logs.JsonLogsInstance`) for. `DagsterInstance` defines no
    `config_defaults` of its own to inherit: Dagster falls back to the private
    `InstanceRef.config_defaults` for its own class, so a subclass has to call it too."""
    from dagster._core.instance.ref import InstanceRef

    return InstanceRef.config_defaults(base_dir)


def add_partition_metadata(
    context: AssetExecutionContext, by_partition: Mapping[str, Mapping[str, Any]]
) -> None:
    """Each partition's own metadata on its materialization, as a call of the public
    `context.add_asset_metadata(metadata, partition_key=key)` per key would put it, but with
    the keys checked once.

    `add_asset_metadata` checks its key by resolving the run's whole partition range again
    (the dynamic `user` partitions from the instance, then every key of the range) on every
    call: for a whole history, 648 calls over 216 keys took 3.5-5 s of a run's wall time on
    SQLite, 10-19 s on dagster-postgres (each lookup a new connection), half as much as all the
    run's events. Here the keys are checked against the run's (`context.partition_keys`,
    resolved once) and added to the step's metadata accumulator, which `add_asset_metadata`
    writes to and Dagster reads when it builds each partition's materialization; that
    accumulator (`StepExecutionContext._metadata_accumulator`) has no public handle."""
    from dagster import DagsterInvariantViolationError

    targeted = set(context.partition_keys)
    unknown = [key for key in by_partition if key not in targeted]
    if unknown:
        raise DagsterInvariantViolationError(
            f"Attempted to add metadata for partition keys {unknown[:3]} that are not targeted."
        )
    step = context.op_execution_context.get_step_execution_context()
    accumulator = step._metadata_accumulator
    for key, metadata in by_partition.items():
        accumulator = accumulator.with_additional_asset_metadata(
            asset_key=context.asset_key, partition_key=key, metadata=metadata
        )
    step._metadata_accumulator = accumulator


def keep_event_log_connection(
    storage: object,
    *,
    max_overflow: int,
    pool_recycle_seconds: int,
    synchronous_commit: bool = True,
) -> bool:
    """Give a dagster-postgres event log a pool that keeps one connection open (plus
    `max_overflow` for concurrent threads); True if `storage` has one (PostgreSQL).

    dagster-postgres opens a new connection (`NullPool`) for every write: two per asset event
    (the event row, then the asset index), each a TCP connect and authentication. A run's
    events are most of its writes (a whole history: 1,296 asset events), so a kept connection
    takes most of Dagster's time out of a run. The storage has no setting for its pool; its
    `optimize_for_webserver` (what `dagster-webserver` calls on its own instance) swaps in a
    pooled engine of one connection, which is the pool wanted. `statement_timeout=0` keeps
    PostgreSQL's default of none (a run's event writes are short; the webserver sets one for
    its reads).

    `synchronous_commit=False` sets PostgreSQL's `synchronous_commit = off` on these
    connections only: a commit returns before its WAL is flushed, so the one-by-one writes
    Dagster makes of a range run's planned events (648 for a whole history, two commits each)
    stop waiting for the disk. A crash of the PostgreSQL server can then lose the event-log
    writes of its last moments (at most 3 x `wal_writer_delay`, 0.6 s by default), never
    corrupt them; run storage, schedules and the app's own database keep their commits. The
    hook goes on the pooled engine, the storage's private `_engine`: no public handle.
    """
    from dagster_postgres import PostgresEventLogStorage
    from sqlalchemy import event

    if not isinstance(storage, PostgresEventLogStorage):
        return False
    storage.optimize_for_webserver(
        statement_timeout=0, pool_recycle=pool_recycle_seconds, max_overflow=max_overflow
    )
    if not synchronous_commit:

        def _asynchronous_commit(connection: Any, _record: Any) -> None:
            with connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit = off")
            connection.commit()

        event.listen(storage._engine, "connect", _asynchronous_commit)
    return True


def write_asset_event_batches_at_once(storage: object) -> bool:
    """Make a SQL event log write a batch of a run's asset events in one statement per table
    instead of two or three per event; True if `storage` is one it knows (dagster-postgres,
    or the embedded SQLite one).

    A range run announces each (asset, partition) it will materialize when it is created, and
    materializes each: a whole history, 3 assets x 216 months, is 648 planned events and 648
    materializations. Dagster hands each kind to the storage as one batch (with
    `DAGSTER_EVENT_BATCH_SIZE` set), but only dagster-postgres writes materializations as a
    batch; every other batch falls to `EventLogStorage.store_event_batch`, which writes one
    event at a time: the event row, then (its own transaction) the asset index. On
    dagster-postgres the 648 planned events were 1,296 round trips and commits, 1.3 s of a 13 s
    run; on SQLite (a new engine and a commit per write) both kinds were 21 s of a 41 s run
    (README, "Dagster's bookkeeping").

    Here such a batch (one run, one of those kinds, every event of an asset) is written as
    Dagster writes a materialization batch on PostgreSQL: the same rows in one multi-row
    INSERT (`prepare_insert_event_batch`), then, in one index transaction, the asset tags of
    every event and one `asset_keys` upsert per asset with its last event. The rows and the
    asset index end as the one-by-one writes leave them (an asset's row keeps what its last
    event sets). Each planned event keeps its partition in its own row, so a failed run still
    marks its partitions failed in the UI (which `DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_
    EVENTS` would give up). Left out: dagster-postgres's NOTIFY per event, which nothing
    listens to since 1.0 (kept upstream "to support version skew"). SQLite mirrors asset events
    into its index shard, as `SqliteEventLogStorage.store_event` does, in the same order (run
    shard, then index), so a failure between them leaves what Dagster's own would.

    Ids are matched to events in ascending order: a statement's rows take increasing ids in
    VALUES order, while RETURNING's row order is unspecified on both databases. Any other
    batch goes to Dagster's method unchanged. The method and its helpers
    (`prepare_insert_event_batch`, `_store_asset_event_tags`, `_store_asset_event`,
    `index_transaction`) have no public handle; the batch method is replaced on this storage
    object only.
    """
    from dagster import DagsterEventType
    from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
    from dagster_postgres import PostgresEventLogStorage

    planned = DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    if isinstance(storage, PostgresEventLogStorage):
        kinds = {planned}  # its own batch method writes materializations at once
        mirrored = False
    elif isinstance(storage, SqliteEventLogStorage):
        kinds = {planned, DagsterEventType.ASSET_MATERIALIZATION}
        mirrored = True
    else:
        return False
    dagster_batch = storage.store_event_batch

    def store_event_batch(events: Any) -> None:  # noqa: ANN401 - Sequence[EventLogEntry]
        types = {
            event.get_dagster_event().event_type if event.is_dagster_event else None
            for event in events
        }
        if (
            len(events) < 2
            or len(types) != 1
            or not types <= kinds
            or len({event.run_id for event in events}) != 1
            or any(event.get_dagster_event().asset_key is None for event in events)
        ):
            dagster_batch(events)
            return
        insert = storage.prepare_insert_event_batch(events)
        if mirrored:
            with storage.run_connection(events[0].run_id) as conn:
                conn.execute(insert)
        with storage.index_transaction() as conn:
            returned = conn.execute(insert.returning(SqlEventLogStorageTable.c.id)).fetchall()
            ids = sorted(int(row[0]) for row in returned)
            storage._store_asset_event_tags(conn, events, ids)
            last: dict[str, tuple[Any, int]] = {}
            for event, event_id in zip(events, ids, strict=True):
                last[event.get_dagster_event().asset_key.to_string()] = (event, event_id)
            for event, event_id in last.values():
                storage._store_asset_event(conn, event, event_id)

    storage.store_event_batch = store_event_batch  # type: ignore[method-assign]
    return True


def close_event_log_connections(storage: object) -> None:
    """Close the connections a pooled dagster-postgres event log keeps (`keep_event_log_
    connection`): `dispose()` of the storage leaves its engine as is, since Dagster's own
    engine keeps none. The engine is the private `_engine`: no public handle."""
    engine = getattr(storage, "_engine", None)
    if engine is not None:
        engine.dispose()


__all__ = [
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "EVENT_TYPE_TO_DISPLAY_STRING",
    "PARTITION_NAME_TAG",
    "add_partition_metadata",
    "close_event_log_connections",
    "coerce_valid_log_level",
    "get_log_record_metadata",
    "has_log_record_metadata",
    "instance_config_defaults",
    "keep_event_log_connection",
    "write_asset_event_batches_at_once",
]
