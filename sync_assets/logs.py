"""Structured run logs: one JSON object per line on stderr, the sync id in every line.

`sync_assets_logger` is a Dagster `@logger`, so it sees what Dagster's own console loggers see:
every record of a run goes through Dagster's `DagsterLogHandler`, which attaches
`record.dagster_meta` (run id, job name, run tags, step key, the `DagsterEvent` when the
record is one, the message as it was logged) and re-logs it to each logger of the run.
`SyncJsonFormatter` turns that metadata into a flat JSON line, like Dagster's
`json_console_logger` but with chosen fields only (no packed events, no run config, no
resources), and adds the sync id:

    sync_id = the run's `dagster/root_run_id` tag, or its run id (`sessions.session_key`)

which is `sync_sessions.dagster_run_id`, so a sync's session and every line of its runs (the
first run and its re-executions) share one correlation id. A line has `ts` (UTC), `level`,
`msg`, `sync_id`, `run_id`, `job`, and when known `step_key`, `event_type`, `asset`,
`partition` (the event's), `partition_range` (the run's), `user`, `error`.
"""

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import coloredlogs
from dagster import DagsterInstance, Field, InitLoggerContext, IntSource, Shape, logger

from sync_assets.core import settings
from sync_assets.core.sessions import session_key
from sync_assets.dagster_private import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    EVENT_TYPE_TO_DISPLAY_STRING,
    PARTITION_NAME_TAG,
    close_event_log_connections,
    coerce_valid_log_level,
    get_log_record_metadata,
    has_log_record_metadata,
    instance_config_defaults,
    keep_event_log_connection,
    write_asset_event_batches_at_once,
)
from sync_assets.partitions import split_key
from sync_assets.sync_request import refuse_bad_options
from sync_assets.user_runs import with_user_tag

LOGGER_NAME = "sync_assets"  # the code location's name (workspace.yaml)
# Dagster starts a job's loggers only for runs whose config names one: every run this project
# launches (the jobs' defaults, sensors, schedules, the CLI) carries this config, and runs
# launched from the UI get it from `JsonLogsInstance` (instance setting `instance_class`).
RUN_CONFIG: dict[str, Any] = {"loggers": {"console": {}}}
LOGGER_DESCRIPTION = "sync_assets: one JSON object per line on stderr, with the sync id."


def _user_of(partition: str | None) -> str | None:
    """The user of a `<month>|<user>` partition key (None for anything else)."""
    if not partition or "|" not in partition:
        return None
    try:
        return split_key(partition)[0]
    except Exception:  # noqa: BLE001 - a log line never fails over a foreign key
        return None


class _RunFields:
    """What every line of one run carries, worked out once from the run's id and tags."""

    def __init__(self, run_id: str | None, tags: Mapping[str, str]) -> None:
        self.run_id = run_id
        self.sync_id = session_key(tags, run_id) if run_id else None
        start = tags.get(ASSET_PARTITION_RANGE_START_TAG)
        end = tags.get(ASSET_PARTITION_RANGE_END_TAG)
        self.partition = tags.get(PARTITION_NAME_TAG)
        self.partition_range = [start, end] if start and end else None
        users = {_user_of(k) for k in ([start, end] if start and end else [self.partition])}
        self.user = users.pop() if len(users) == 1 else None  # a run over one user only


class SyncJsonFormatter(logging.Formatter):
    """One JSON object per record; one instance per logger, i.e. per run (and process)."""

    def __init__(self, run_id: str | None = None) -> None:
        super().__init__()
        self._run_id = run_id
        self._run: _RunFields | None = None

    def _run_fields(self, meta: Mapping[str, Any] | None) -> _RunFields:
        if self._run is None:
            if meta is None:  # not from Dagster's log manager: only the run id is known
                return _RunFields(self._run_id, {})
            self._run = _RunFields(meta.get("run_id") or self._run_id, meta.get("job_tags") or {})
        return self._run

    def format(self, record: logging.LogRecord) -> str:
        meta = get_log_record_metadata(record) if has_log_record_metadata(record) else None
        run = self._run_fields(meta)
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "msg": meta["orig_message"] if meta else record.getMessage(),
            "sync_id": run.sync_id,
            "run_id": (meta and meta.get("run_id")) or run.run_id,
            "job": meta.get("job_name") if meta else None,
        }
        if meta and meta.get("step_key"):
            line["step_key"] = meta["step_key"]
        event = meta.get("dagster_event") if meta else None
        partition = None
        if event is not None:
            # As Dagster's console logger shows it (RUN_START, not the legacy PIPELINE_START).
            line["event_type"] = EVENT_TYPE_TO_DISPLAY_STRING.get(
                event.event_type, event.event_type_value
            )
            asset_key = getattr(event, "asset_key", None)
            if asset_key is not None:
                line["asset"] = asset_key.to_user_string()
            partition = getattr(event, "partition", None)
            if partition:
                line["partition"] = partition
        if run.partition and "partition" not in line:
            line["partition"] = run.partition
        if run.partition_range:
            line["partition_range"] = run.partition_range
        user = _user_of(partition) or run.user
        if user:
            line["user"] = user
        error = _error_text(event)
        if error:
            line["error"] = error
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _error_text(event: Any) -> str | None:
    """The error of a failure event, as Dagster's console logger appends it to the message."""
    data = getattr(event, "event_specific_data", None) if event is not None else None
    error = getattr(data, "error", None) if data is not None else None
    if error is None:
        return None
    return getattr(data, "error_display_string", None) or error.to_string()


@logger(
    Field(
        {
            "log_level": Field(
                str,
                is_required=False,
                default_value="INFO",
                description="The logger's threshold (SYNC_ASSETS_LOG_LEVEL, when set, wins).",
            ),
        },
        description=LOGGER_DESCRIPTION,
    ),
    description=LOGGER_DESCRIPTION,
)
def sync_assets_logger(init_context: InitLoggerContext) -> logging.Logger:
    """JSON lines on stderr for every record of the run (see the module's docstring)."""
    level = coerce_valid_log_level(settings.log_level() or init_context.logger_config["log_level"])
    # Not registered with `logging` (as Dagster's own console loggers): no propagation to the
    # root logger, so no second, unstructured copy of a line.
    logger_ = logging.getLoggerClass()(LOGGER_NAME, level=level)
    handler = coloredlogs.StandardErrorHandler()  # the stderr of the moment (like Dagster's)
    handler.setFormatter(SyncJsonFormatter(init_context.run_id))
    logger_.addHandler(handler)
    return logger_


# -- runs launched without run config (the UI) -------------------------------------------------
def with_json_loggers(run_config: Mapping[str, Any] | None, job_snapshot: Any) -> dict[str, Any]:
    """`run_config` with `RUN_CONFIG`'s loggers when it names no logger and the job's `console`
    logger is this module's (`job_snapshot`: the job's `JobSnap`); else `run_config` as is."""
    config = dict(run_config or {})
    if config.get("loggers") or job_snapshot is None:
        return config
    loggers = [
        snap
        for mode in getattr(job_snapshot, "mode_def_snaps", ())
        for snap in mode.logger_def_snaps
    ]
    if any(s.name == "console" and s.description == LOGGER_DESCRIPTION for s in loggers):
        config["loggers"] = RUN_CONFIG["loggers"]
    return config


EVENT_LOG_POOL_FIELD = Field(
    Shape(
        {
            "max_overflow": Field(IntSource, is_required=False, default_value=4),
            "pool_recycle_seconds": Field(IntSource, is_required=False, default_value=3600),
            "synchronous_commit": Field(
                bool,
                is_required=False,
                default_value=True,
                description="false: the event log's commits do not wait for PostgreSQL's WAL "
                "flush (a server crash may lose its last 0.6 s of events, never corrupt them)",
            ),
        }
    ),
    is_required=False,
    description="dagster-postgres storage: the event log keeps one connection open per process "
    "(and up to max_overflow more for threads) instead of one new connection per write",
)


class JsonLogsInstance(DagsterInstance):
    """A Dagster instance whose runs of this code location's jobs log JSON even when launched
    without run config.

    Dagster starts a job's loggers only when the run config names one, and the runs the UI
    launches (an asset backfill, "Materialize", "Execute checks") carry no config: they would
    get Dagster's colored console logger. Named in the instance's `dagster.yaml`

        instance_class:
          module: sync_assets.logs
          class: JsonLogsInstance

    (the webserver, the daemon and the run workers all load it), every run created without a
    `loggers` entry whose job has this module's `console` logger is created with
    `loggers: {console: {}}` (`with_json_loggers`), which the run page shows. Runs of other
    jobs, and runs whose config names a logger, are created as given.

    With the setting `event_log_pool` (deploy/production/dagster.yaml) a dagster-postgres
    event log keeps its connection (`dagster_private.keep_event_log_connection`): Dagster's
    own opens one per write, and a whole-history run writes 1,296 asset events (README,
    "Dagster's bookkeeping"). Without it, or on SQLite, nothing changes.

    On both dagster-postgres and the embedded SQLite, a batch of a run's planned events (and
    on SQLite of its materializations), written as one when `DAGSTER_EVENT_BATCH_SIZE` is set,
    takes a statement per table instead of two or three per event
    (`dagster_private.write_asset_event_batches_at_once`); the rows are the same.
    """

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        """Its one setting, `event_log_pool` (Dagster asks a custom instance class for its
        schema and passes the values to `__init__`)."""
        return {"event_log_pool": EVENT_LOG_POOL_FIELD}

    def __init__(
        self, *args: Any, event_log_pool: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._pooled_event_log = event_log_pool is not None and keep_event_log_connection(
            self.event_log_storage,
            max_overflow=event_log_pool.get("max_overflow", 4),
            pool_recycle_seconds=event_log_pool.get("pool_recycle_seconds", 3600),
            synchronous_commit=event_log_pool.get("synchronous_commit", True),
        )
        write_asset_event_batches_at_once(self.event_log_storage)

    def dispose(self) -> None:
        super().dispose()
        if self._pooled_event_log:
            close_event_log_connections(self.event_log_storage)

    @classmethod
    def config_defaults(cls, base_dir: str) -> Mapping[str, Any]:
        """The default instance's storages (Dagster asks a custom instance class for them)."""
        return instance_config_defaults(base_dir)

    def create_run(self, **kwargs: Any) -> Any:  # noqa: ANN401 - DagsterRun
        # A sync option out of range (the launchpad checks only types): no run at all.
        refuse_bad_options(kwargs.get("run_config"))
        config = with_json_loggers(kwargs.get("run_config"), kwargs.get("job_snapshot"))
        # A backfill's runs too carry their user's tag: the run queue starts one per user.
        tags = with_user_tag(kwargs.get("tags"))
        return super().create_run(**{**kwargs, "run_config": config, "tags": tags})
