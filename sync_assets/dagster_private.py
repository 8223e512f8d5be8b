"""The private Dagster names this project depends on, in one audited place.

Product code imports Dagster's public API (`from dagster import ...`) everywhere else; what
follows has no public equivalent in dagster 1.13 (checked against `dagster/__init__.py`, which
exports none of them). Each name says why it is needed and why nothing public replaces it.
Upgrading Dagster: check these first (`grep -rn "dagster\\._" sync_assets` finds only this file).
"""

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


__all__ = [
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "EVENT_TYPE_TO_DISPLAY_STRING",
    "PARTITION_NAME_TAG",
    "coerce_valid_log_level",
    "get_log_record_metadata",
    "has_log_record_metadata",
    "instance_config_defaults",
]
