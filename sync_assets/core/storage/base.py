"""What every storage backend offers, and the row shapes they share.

Two backends implement `Store`: PostgreSQL (Supabase, production) and SQLite (the embedded
default). One contract test suite runs against both so that they cannot drift.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, Self

import pyarrow as pa
import pyarrow.compute as pc

from sync_assets.core.clients.strava_listing import ListCursor
from sync_assets.core.clients.tokens import StravaConnection, StravaTokens, TokenStore
from sync_assets.core.enrichment.weather import WeatherCache
from sync_assets.core.errors import AuthenticationError, ErrorType, SyncError
from sync_assets.core.models import quality_notes

# Columns of public.runs written by the pipeline (id, created_at, updated_at are the database's):
# the seed's contract (tests/data/seed_schema.sql) and ours beside it (see the README's table).
RUNS_COLUMNS: tuple[str, ...] = (
    "user_id",
    "strava_id",
    "athlete_id",
    "name",
    "activity_type",
    "type",
    "sport_type",
    "start_date_utc",
    "start_date_local",
    "timezone",
    "distance_meters",
    "moving_time_seconds",
    "elapsed_time_seconds",
    "total_elevation_gain_meters",
    "average_speed_ms",
    "max_speed_ms",
    "average_heartrate_bpm",
    "max_heartrate_bpm",
    "average_heartrate_bpm_precise",
    "max_heartrate_bpm_precise",
    "start_latitude",
    "start_longitude",
    "end_latitude",
    "end_longitude",
    "manual",
    "trainer",
    "commute",
    "private",
    "visibility",
    "city",
    "state",
    "country",
    "temperature_celsius",
    "feels_like_celsius",
    "humidity_percent",
    "pressure_hpa",
    "wind_speed_ms",
    "wind_direction_degrees",
    "weather_condition",
    "visibility_meters",
    "uv_index",
    "strava_data",
    "enrichment_status",
    "sync_session_id",
)
# runs column <- the column of the Parquet/Arrow tables (`models.ACTIVITY_SCHEMA`,
# `enrichment.activities.ENRICHED_SCHEMA`) where the names differ: the files keep theirs.
RUNS_SOURCES: dict[str, str] = {
    "start_date_utc": "start_date",
    "average_speed_ms": "average_speed_mps",
    "max_speed_ms": "max_speed_mps",
    "average_heartrate_bpm_precise": "average_heartrate_bpm",
    "max_heartrate_bpm_precise": "max_heartrate_bpm",
    "start_latitude": "start_lat",
    "start_longitude": "start_lng",
    "end_latitude": "end_lat",
    "end_longitude": "end_lng",
    "wind_speed_ms": "wind_speed_mps",
}
# The seed's `real` (float4) columns: the nearest real, written as its shortest decimal (what
# PostgreSQL reads back), on both backends alike.
REAL_COLUMNS = frozenset(
    {
        "distance_meters",
        "total_elevation_gain_meters",
        "average_speed_ms",
        "max_speed_ms",
        "start_latitude",
        "start_longitude",
        "end_latitude",
        "end_longitude",
        "temperature_celsius",
        "feels_like_celsius",
        "pressure_hpa",
        "wind_speed_ms",
        "uv_index",
    }
)
# The seed's `integer` columns of measured values: rounded half to even (as PostgreSQL's cast).
# The heart rates are also kept as sent, in `*_precise`.
INTEGER_COLUMNS = frozenset(
    {
        "average_heartrate_bpm",
        "max_heartrate_bpm",
        "humidity_percent",
        "wind_direction_degrees",
        "visibility_meters",
    }
)
INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
JSON_COLUMNS = frozenset({"strava_data", "enrichment_status"})

# The runs rows as the store writes them (`runs_table`): RUNS_COLUMNS, in order, in these types.
_RUNS_TYPES: dict[str, pa.DataType] = {
    "strava_id": pa.int64(),
    "athlete_id": pa.int64(),
    "start_date_utc": pa.timestamp("s", tz="UTC"),
    "start_date_local": pa.timestamp("s", tz="UTC"),
    "moving_time_seconds": pa.int64(),
    "elapsed_time_seconds": pa.int64(),
    "average_heartrate_bpm_precise": pa.float64(),
    "max_heartrate_bpm_precise": pa.float64(),
    "manual": pa.bool_(),
    "trainer": pa.bool_(),
    "commute": pa.bool_(),
    "private": pa.bool_(),
    **{c: pa.float64() for c in REAL_COLUMNS},
    **{c: pa.int64() for c in INTEGER_COLUMNS},
}
RUNS_SCHEMA = pa.schema([(c, _RUNS_TYPES.get(c, pa.string())) for c in RUNS_COLUMNS])

SESSION_FIELDS = frozenset(
    {
        "status",
        "activities_fetched",
        "activities_enriched",
        "activities_stored",
        "activities_updated",
        "activities_skipped",
        "activities_failed",
        "progress",
        "last_error",
        "retry_count",
        "last_successful_page",
        "checkpoint_data",
        "completed_at",
        "time_range_start",
        "time_range_end",
        "current_phase",
        "total_activities_estimated",
        "error_count",
        "last_activity_at",
    }
)
SESSION_JSON_FIELDS = frozenset({"progress", "last_error", "checkpoint_data"})
# The seed's counters are nullable: a null reads as 0 (and a null progress or checkpoint as {}).
SESSION_COUNTERS: tuple[str, ...] = (
    "total_activities_estimated",
    "activities_fetched",
    "activities_enriched",
    "activities_stored",
    "activities_updated",
    "activities_skipped",
    "activities_failed",
    "error_count",
    "retry_count",
    "last_successful_page",
)


@dataclass
class StoreResult:
    """Outcome of storing a batch of runs (the shape the app's StoreResponse reports)."""

    saved: int = 0  # new rows
    updated: int = 0  # existing rows whose content changed
    skipped: int = 0  # existing rows already identical
    failed: int = 0  # rows the database refused: quarantined with its error
    batches: int = 0  # transactions the rows took (`SyncOptions.batch_size` rows each)
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def add(self, other: StoreResult) -> None:
        self.saved += other.saved
        self.updated += other.updated
        self.skipped += other.skipped
        self.failed += other.failed
        self.batches += other.batches
        self.seconds += other.seconds
        self.errors.extend(other.errors)


# weather_store.sql parameter -> HourlyWeather field.
WEATHER_PARAMS: dict[str, str] = {
    "temperature": "temperature_celsius",
    "feels_like": "feels_like_celsius",
    "humidity": "humidity_percent",
    "pressure": "pressure_hpa",
    "wind_speed": "wind_speed_mps",
    "wind_direction": "wind_direction_degrees",
    "code": "weather_code",
    "cond": "weather_condition",
    "visibility": "visibility_meters",
    "uv": "uv_index",
}

STAGING_MAX_AGE = 24 * 3600  # older pages may have changed upstream: fetch them again
STAGED_PAGES_BATCH = 10  # pages a resume reads at once (2,000 activities of JSON text)
STAGED_PAGES_ALL = 2**31 - 1  # no limit (a LIMIT both databases take)


@dataclass(frozen=True)
class LeaseHolder:
    """The run holding a user (`sync_user_leases`)."""

    run_id: str
    acquired_at: datetime | None
    renewed_at: datetime | None
    expired: bool  # not renewed within its ttl: its holder stopped beating


class LeaseLost(SyncError):
    """A run wrote as the holder of a user it no longer holds (another run took it over after
    its heartbeat stopped): it stops before writing anything more; retryable."""

    def __init__(self, user_id: str, run_id: str) -> None:
        super().__init__(
            ErrorType.UNKNOWN,
            f"run {run_id} no longer holds user {user_id}: another run of the user took over "
            "after this run's heartbeat stopped; stopping before it writes more",
            retryable=True,
        )


@dataclass(frozen=True)
class StagedPage:
    page: int
    cursor: ListCursor  # where the listing continues after this page
    records: str  # JSON array, as received

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> StagedPage:
        """(page, cursor_after, cursor_before, cursor_order, cursor_page, records)."""
        page, after, before, order, offset, records = row
        return cls(page, ListCursor(int(after), int(before), order, int(offset)), records)


@dataclass(frozen=True)
class ListingWatermark:
    """How far a user's activities are known to be listed (`strava_listing_watermarks`): a
    complete listing started at `listed_through` returned every activity Strava then had with a
    start in [`listed_from`, `listed_through`), and those are stored."""

    listed_from: datetime
    listed_through: datetime


@dataclass(frozen=True)
class QuarantineRecord:
    user_id: str
    strava_id: int | None
    reason: str
    payload: str
    source: str = "validation"


@dataclass(frozen=True)
class SessionRecord:
    id: str
    user_id: str
    dagster_run_id: str
    sync_type: str
    status: str
    current_phase: str  # 'fetching' | 'enriching' | 'storing' | 'completed' (the seed's phases)
    time_range_start: datetime | None
    time_range_end: datetime | None
    total_activities_estimated: int
    activities_fetched: int
    activities_enriched: int
    activities_stored: int
    activities_updated: int
    activities_skipped: int
    activities_failed: int
    error_count: int  # failures recorded on the session + activities_failed (see the README)
    progress: dict[str, Any]
    last_error: dict[str, Any] | None
    retry_count: int
    last_successful_page: int
    checkpoint_data: dict[str, Any]
    started_at: datetime | None
    completed_at: datetime | None
    last_activity_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SessionRecord:
        """A session as a backend's query returns it (see get_session.sql), nulls read as 0."""
        data = dict(row)
        for name in SESSION_COUNTERS:
            if data[name] is None:
                data[name] = 0
        for name in ("progress", "checkpoint_data"):
            if data[name] is None:
                data[name] = {}
        return cls(**data)


# The views of 20261129001100_sync_metrics.sql / 0009_sync_metrics.sql (`Store.metrics_view`).
METRICS_VIEWS: tuple[str, ...] = (
    "sync_success_rate",
    "sync_duration_by_volume",
    "sync_api_health",
    "sync_write_performance",
)


@dataclass
class StepMetrics:
    """One Dagster step (asset) of a sync, as `sync_step_metrics` keeps it: written when the
    step ends, read by the metrics views and the alerts."""

    sync_id: str  # the root run: sync_sessions.dagster_run_id
    dagster_run_id: str  # this run (a re-execution has its own)
    step: str  # the asset
    api: str | None = None  # 'strava', 'weather' or None
    users: int = 0
    activities: int = 0  # activities the step handled
    seconds: float = 0.0
    api_requests: int = 0  # HTTP attempts on the wire, retries included
    api_errors: int = 0  # failed attempts: network errors, 5xx, 429, broken bodies
    api_rate_limited: int = 0  # 429 answers
    api_retries: int = 0
    api_latency_ms_total: float = 0.0
    api_latency_ms_max: float = 0.0
    api_latency_ms_p95: float | None = None
    api_quota_used: float = 0.0  # Strava requests, or Open-Meteo's weighted calls
    rows_written: int = 0
    write_seconds: float = 0.0
    db_pool_max: int | None = None
    db_pool_waits: int = 0  # requests that waited for a pooled connection
    db_pool_wait_ms: float = 0.0
    db_pool_timeouts: int = 0
    recorded_at: datetime | None = None  # the database's clock unless given


class ClosedOnExit:
    """`with store:` (or `with open_store(...) as store:`) closes the store when the block
    ends, however it ends."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()  # type: ignore[attr-defined]


class Store(TokenStore, WeatherCache, Protocol):
    """The pipeline's whole view of its database (tokens and the weather cache included)."""

    def migrate(self) -> list[str]: ...

    # Connections and tokens: everything `TokenStore` has, plus key rotation.
    def rotate_keys(self) -> int: ...
    def active_users(
        self, since: datetime, after_user: str = "", limit: int = 1000
    ) -> list[tuple[str, datetime]]:
        """(user, connected at) of active connections after the keyset point (`since`,
        `after_user`), oldest first."""
        ...

    def connect_athlete(
        self, user_id: str, tokens: StravaTokens, *, athlete_id: int, scopes: str | None
    ) -> str | None:
        """Save the user's connection to `athlete_id` unless another user holds that athlete
        (not deauthorized): then return that user and write nothing. One transaction."""
        ...

    def use_oauth_state(self, nonce: str, expires_at: int, now: int) -> bool:
        """Spend an OAuth state's nonce: False if it was spent before (a replay). Prunes the
        nonces expired at `now` (Unix seconds)."""
        ...

    # Runs.
    def upsert_runs_table(
        self, table: pa.Table, session_id: str | None = None, batch_size: int | None = None
    ) -> StoreResult:
        """Insert or update the rows of a `raw_strava_activities` or enriched table (what
        `runs_table` makes of it), a batch (`batch_size` rows, default the store's) per
        transaction; `session_id` (the sync session
        writing them) goes to `sync_session_id` of the rows inserted or changed (unchanged
        rows keep the session that last wrote them). Rows the database refuses are
        quarantined (source 'store') and counted in `failed`; the rest is stored."""
        ...

    def upsert_runs(
        self, rows: Sequence[dict[str, Any]], session_id: str | None = None
    ) -> StoreResult:
        """`upsert_runs_table` for `runs_rows` rows (dicts, perhaps edited)."""
        ...

    def quarantine(
        self, records: Sequence[QuarantineRecord], session_id: str | None = None
    ) -> int: ...
    def run_ids(self, user_id: str) -> list[int]: ...
    def unstored_ids(self, user_id: str, ids: Sequence[int]) -> list[int]:
        """Those of `ids` that are neither in the user's runs nor tombstoned (deleted on
        Strava): what a sync listed but did not store."""
        ...

    # Strava push events (see `sync_assets.apps.webhooks`).
    def record_webhook_event(self, event: dict[str, Any]) -> int | None: ...
    def record_webhook_events(self, events: list[dict[str, Any]]) -> list[int | None]:
        """Store a batch in one transaction (the receiver's group commit: one commit for many
        events), all or none; per event, in order, its new id or None if already stored."""
        ...

    def webhook_events_after(self, after: int, limit: int = 1000) -> list[dict[str, Any]]: ...
    def users_with_news(self) -> set[str]:
        """Active users with a push event newer than their last completed sync."""
        ...

    def run_start(self, user_id: str, strava_id: int) -> datetime | None: ...
    def delete_run(self, user_id: str, strava_id: int) -> int: ...
    def delete_unlisted_runs(
        self,
        user_id: str,
        window_start: datetime,
        window_end: datetime,
        listed: Sequence[int],
        listed_at: datetime,
    ) -> int:
        """Delete the user's rows in the window that a complete listing started at `listed_at`
        did not return (deleted on Strava), if stored before it; return how many."""
        ...

    def delete_user_data(self, user_id: str, reason: str) -> None:
        """Delete the user's Strava data (runs, quarantine, staging); the connection stays,
        `deauthorized`, with its tokens blanked. From then on every write of the user's data
        (runs, quarantine, staging, sessions, watermark) raises `DeauthorizedError`, checked
        in the writing transaction itself."""
        ...

    def connection_status(self, user_id: str) -> str | None:
        """The user's connection status (`active`, `revoked`, `deauthorized`), None if none."""
        ...

    # What incremental syncs build on (`sync_assets.core.incremental`).
    def stored_activities(
        self, user_id: str, window_start: datetime, window_end: datetime
    ) -> list[tuple[int, str | None]]:
        """(strava_id, the SummaryActivity JSON as stored or None) of the user's rows with a
        start in the window, oldest first."""
        ...

    def listing_watermark(self, user_id: str) -> ListingWatermark | None: ...
    def advance_listing_watermark(self, user_id: str, watermark: ListingWatermark) -> None:
        """Record the watermark of a stored complete listing, unless a later one is recorded."""
        ...

    # The app-wide Strava budget shared by every run (see `resources.rate_limit`).
    def budget_ensure(self, app: str) -> None: ...
    def budget_take(self, app: str, **window: Any) -> bool: ...
    def budget_observe(self, app: str, **observed: Any) -> None: ...
    def budget_state(self, app: str) -> dict[str, Any] | None: ...

    # Sync sessions.
    def create_session(
        self,
        *,
        run_id: str,
        user_id: str,
        sync_type: str,
        time_range_start: datetime | None,
        time_range_end: datetime | None,
    ) -> SessionRecord: ...
    def get_session(self, run_id: str, user_id: str) -> SessionRecord | None: ...
    def run_sessions(self, run_id: str) -> list[SessionRecord]: ...
    def update_session(self, run_id: str, user_id: str, **changes: Any) -> SessionRecord: ...
    def open_sessions(self) -> list[SessionRecord]: ...
    def resolve_errors(self, session: SessionRecord) -> int:
        """`session` completed: the retryable failures of the user's earlier sessions over
        months within its own are marked `resolved` (how many)."""
        ...

    def recent_sessions(self, user_id: str | None = None, limit: int = 20) -> list[SessionRecord]:
        """The newest sessions first, of one user or of everyone."""
        ...

    def session_by_id(self, session_id: str) -> SessionRecord | None:
        """One session by its id (`sync_sessions.id`, a uuid: the seed's syncId)."""
        ...

    def session_quarantine(self, session_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The activities a session quarantined, oldest first: `strava_id`, `reason`,
        `source` ('validation' or 'store')."""
        ...

    def pending_enrichment(self, now: datetime) -> list[tuple[str, datetime, int]]:
        """(user, month, activities) whose weather is pending or failed and due by `now`."""
        ...

    # Checkpointed pages of unfinished listings.
    def stage_page(
        self,
        user_id: str,
        span: str,
        page: int,
        cursor: ListCursor,
        records: str,
        *,
        run_id: str | None = None,
    ) -> None:
        """Keep one page; with `run_id`, only while that run holds the user (`lease_take`),
        else `LeaseLost`: a run that lost its user writes no more pages."""
        ...

    def adopt_staging(self, user_id: str, span: str, run_id: str) -> int:
        """The span's staged pages become `run_id`'s, if it holds the user (else `LeaseLost`);
        returns the pages adopted."""
        ...

    def staged_pages(
        self,
        user_id: str,
        span: str,
        max_age_seconds: int = STAGING_MAX_AGE,
        *,
        after_page: int = 0,
        limit: int | None = None,
    ) -> list[StagedPage]:
        """The span's staged pages in page order, those after `after_page`, at most `limit`."""
        ...

    def iter_staged_pages(
        self, user_id: str, span: str, batch: int = STAGED_PAGES_BATCH
    ) -> Iterator[StagedPage]:
        """All the span's staged pages in page order, read `batch` at a time."""
        ...

    def clear_staging(self, user_id: str, span: str, *, after_page: int = 0) -> None:
        """Forget the span's staged pages after `after_page` (by default all of them)."""
        ...

    # One run per user at a time (`sync_assets.core.leases`).
    def lease_take(
        self, user_id: str, run_id: str, ttl_seconds: float, *, ended_run: str | None = None
    ) -> bool:
        """Hold `user_id` for `run_id` if free, its own, held by `ended_run` or expired."""
        ...

    def lease_holder(self, user_id: str) -> LeaseHolder | None:
        """Who holds `user_id`, if anyone."""
        ...

    def lease_renew(self, user_id: str, run_id: str) -> bool:
        """The holder's heartbeat; False when `run_id` no longer holds the user."""
        ...

    def lease_release(self, user_id: str, run_id: str) -> None:
        """Free `user_id` if `run_id` holds it."""
        ...

    def connection_usage(self) -> dict[str, int] | None:
        """`in_use` and `allowed` client connections of the database server; None without one."""
        ...

    def take_pool_stats(self) -> dict[str, int] | None:
        """Connection-pool counters since the last call; None without a pool."""
        ...

    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...

    # Sync metrics (no user data: deauthorization leaves them).
    def record_step_metrics(self, metrics: StepMetrics) -> None: ...
    def step_metrics(
        self,
        *,
        since: datetime,
        api: str | None = None,
        step: str | None = None,
        sync_id: str | None = None,
    ) -> list[StepMetrics]:
        """Steps recorded at or after `since`, oldest first, of one API, step or sync if given."""
        ...

    def metrics_view(self, name: str) -> list[dict[str, Any]]:
        """Every row of one of `METRICS_VIEWS` (ValueError for any other name), in order."""
        ...


DEAUTHORIZED_STATUS = "deauthorized"


class DeauthorizedError(AuthenticationError):
    """A write of a user's data refused: the athlete deauthorized the app, their data was
    deleted and nothing of theirs is written again (checked in the writing transaction)."""

    def __init__(self, user_id: str) -> None:
        super().__init__(
            f"athlete deauthorized: user {user_id} revoked the app's access, their Strava data"
            " was deleted and nothing of it is written again",
            details={"user_id": user_id, "deauthorized": True},
        )
        self.user_id = user_id


def require_active(user_id: str, conn: StravaConnection | None) -> StravaConnection:
    """The user's connection, or the clear error that stops their sync."""
    if conn is None:
        raise AuthenticationError(
            f"user {user_id} has no Strava connection: run `sync-assets connect`"
        )
    if conn.status != "active":
        raise AuthenticationError(
            f"the Strava connection of user {user_id} is {conn.status}"
            f" ({conn.status_reason or 'no reason recorded'}): the athlete must reconnect"
        )
    return conn


def _real(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """The nearest `real` (float4) of each value, as the shortest decimal that reads back as it
    (what PostgreSQL returns for a real): 0 where it rounds to 0, null beyond real's range."""
    single = pc.cast(values, pa.float32())
    shortest = pc.cast(pc.cast(single, pa.string()), pa.float64())
    return pc.if_else(pc.is_inf(single), pa.scalar(None, pa.float64()), shortest)


def _integer(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """The nearest integer of each value, half to even (PostgreSQL's cast, Python's round()),
    null beyond integer's range."""
    rounded = pc.round(pc.cast(values, pa.float64()), round_mode="half_to_even")
    inside = pc.and_(pc.greater_equal(rounded, INT4_MIN), pc.less_equal(rounded, INT4_MAX))
    return pc.cast(pc.if_else(inside, rounded, pa.scalar(None, pa.float64())), pa.int64())


def _runs_columns(table: pa.Table) -> dict[str, pa.ChunkedArray]:
    """The runs columns a table holds, under their database names and in the seed's types."""
    names = set(table.column_names)
    out: dict[str, pa.ChunkedArray] = {}
    for column in RUNS_COLUMNS:
        source = RUNS_SOURCES.get(column, column)
        if source in names:
            out[column] = table.column(source)
    sport = table.column("sport_type")
    # The seed's activity_type: Strava's legacy `type`, else sport_type (itself never null).
    out["activity_type"] = pc.coalesce(table.column("type"), sport) if "type" in names else sport
    # Strava writes the local wall-clock time with a "Z": kept as written, in a timestamptz.
    # Without one (Strava's spec allows it; the seed's column is NOT NULL), the UTC start.
    start = table.column("start_date")
    local = table.column("start_date_local") if "start_date_local" in names else None
    local = pc.cast(local, start.type) if local is not None else start
    out["start_date_local"] = pc.coalesce(local, start)
    for column in REAL_COLUMNS & out.keys():
        out[column] = _real(out[column])
    for column in INTEGER_COLUMNS & out.keys():
        out[column] = _integer(out[column])
    return out


def _enrichment_status(table: pa.Table, enrichment: dict[str, Any] | None) -> pa.ChunkedArray:
    """Each row's `enrichment_status` JSON: the table's own (an enriched table has one), else
    `enrichment` (by default: not enriched) with the row's `data_quality` notes, if any, under
    `"data_quality"`. Built once per distinct `data_quality` value (there are a handful: which
    fields Strava left out), not per row."""
    names = set(table.column_names)
    n = table.num_rows
    given = table.column("enrichment_status") if "enrichment_status" in names else None
    if given is not None and given.null_count == 0:
        return given
    quality = table.column("data_quality") if "data_quality" in names else pa.nulls(n, pa.string())
    distinct = pc.unique(quality)
    base = enrichment or {"weather": False, "geocoding": False, "reason": "not enriched"}
    texts = []
    for value in distinct.to_pylist():
        status = dict(base)
        notes = quality_notes(value)  # no column in older files: none
        if notes:
            status["data_quality"] = notes
        texts.append(json.dumps(status))
    built = pa.array(texts, pa.string()).take(pc.index_in(quality, distinct))
    built = pa.chunked_array([built])
    return pc.coalesce(given, built) if given is not None else built


def runs_table(
    table: pa.Table, enrichment: dict[str, Any] | None = None, session_id: str | None = None
) -> pa.Table:
    """Rows of public.runs (`RUNS_SCHEMA`) from a `raw_strava_activities` (or enriched) table,
    column by column (Arrow compute, no Python object per row): what the store writes.

    Columns get the database's names (`RUNS_SOURCES`) and the seed's types: reals rounded to
    float4, heart rates and the integer weather values rounded to integers (the heart rates as
    sent stay in `*_precise`), `activity_type` and `start_date_local` filled as the README says.
    A raw row's `enrichment_status` is `enrichment` (by default: not enriched), with the row's
    `data_quality` notes under `"data_quality"` when it has any (as enrichment copies them).
    `sync_session_id` is `session_id` on every row; columns the table lacks are null."""
    n = table.num_rows
    columns = _runs_columns(table)
    columns["strava_data"] = table.column("payload")
    columns["enrichment_status"] = _enrichment_status(table, enrichment)
    columns["sync_session_id"] = pa.repeat(pa.scalar(session_id, pa.string()), n)
    arrays = []
    for f in RUNS_SCHEMA:
        values = columns.get(f.name)
        arrays.append(pa.nulls(n, f.type) if values is None else values.cast(f.type))
    return pa.Table.from_arrays(arrays, schema=RUNS_SCHEMA)


def runs_rows(table: pa.Table, enrichment: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """`runs_table`'s rows as dicts (`sync_session_id` None: the store's to fill), for callers
    that want to look at or edit rows; the store takes the table itself
    (`Store.upsert_runs_table`)."""
    return runs_table(table, enrichment).to_pylist()
