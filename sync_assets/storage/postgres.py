"""The production backend: PostgreSQL (Supabase's direct connection or its pooler).

Writes go through a connection pool. Runs are stored with COPY into a per-transaction staging
table and one `INSERT ... ON CONFLICT DO UPDATE ... WHERE ... IS DISTINCT FROM` per batch: one
round trip for thousands of rows, unchanged rows skipped. A batch is one transaction: if the
database refuses a row, the batch is replayed row by row inside savepoints, the refused rows are
quarantined with the database's reason and the rest is stored; if the connection drops, the
transaction is gone and the whole batch is retried on a fresh connection.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from sync_assets.errors import ErrorType, SyncError
from sync_assets.migrations import migrate_postgres
from sync_assets.resources.strava_listing import ListCursor
from sync_assets.resources.tokens import StravaConnection, StravaTokens
from sync_assets.resources.weather_providers import Cell, HourKey, HourlyWeather
from sync_assets.storage.base import (
    METRICS_VIEWS,
    RUNS_COLUMNS,
    SESSION_FIELDS,
    SESSION_JSON_FIELDS,
    STAGING_MAX_AGE,
    WEATHER_PARAMS,
    ClosedOnExit,
    QuarantineRecord,
    SessionRecord,
    StagedPage,
    StepMetrics,
    StoreResult,
    require_active,
)
from sync_assets.storage.crypto import TokenCipher
from sync_assets.storage.sql import statement

log = logging.getLogger(__name__)
BATCH_SIZE = 5_000


def Q(name: str) -> str:  # noqa: N802 - reads like a constant
    return statement("postgres", name)


def _session(row: dict[str, Any]) -> SessionRecord:
    return SessionRecord.from_row(row)


class PostgresStore(ClosedOnExit):
    def __init__(
        self,
        database_url: str,
        cipher: TokenCipher,
        *,
        pooler: bool | None = None,
        min_size: int = 1,
        max_size: int = 4,
        batch_size: int = BATCH_SIZE,
        retries: int = 3,
    ) -> None:
        self._cipher = cipher
        self.batch_size = batch_size
        self._retries = retries
        # Supavisor/PgBouncer in transaction mode cannot keep server-side prepared statements.
        if pooler is None:
            pooler = ":6543" in database_url or "pooler.supabase" in database_url
        kwargs: dict[str, Any] = {"autocommit": False}
        if pooler:
            kwargs["prepare_threshold"] = None
        self._pool = ConnectionPool(
            database_url,
            min_size=min_size,
            max_size=max_size,
            kwargs=kwargs,
            check=ConnectionPool.check_connection,
            open=True,
            name="sync_assets",
        )
        # Test hook: called inside a batch transaction after staging, before the merge.
        self.before_merge: Callable[[psycopg.Connection], None] | None = None

    def close(self) -> None:
        self._pool.close()

    def connection_usage(self) -> dict[str, int] | None:
        """The server's client connections in use and how many it allows."""
        with self._tx() as conn:
            cur = conn.cursor(row_factory=dict_row)
            return cur.execute(Q("connection_usage")).fetchone()

    def take_pool_stats(self) -> dict[str, int] | None:
        """The pool's counters since the last call (psycopg_pool's `pop_stats`): requests that
        queued for a connection, their wait, timeouts, `pool_max`."""
        return self._pool.pop_stats()

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection]:
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type(psycopg.OperationalError),
            wait=wait_random_exponential(multiplier=0.2, max=5),
            stop=stop_after_attempt(self._retries + 1),
            reraise=True,
        )

    def migrate(self) -> list[str]:
        with self._pool.connection() as conn:
            return migrate_postgres(conn)

    # -- connections ----------------------------------------------------------------------
    def _connection(self, row: dict[str, Any]) -> StravaConnection:
        return StravaConnection(
            user_id=row["user_id"],
            athlete_id=row["athlete_id"],
            scopes=row["scopes"],
            status=row["status"],
            status_reason=row["status_reason"],
            tokens=StravaTokens(
                access_token=self._cipher.decrypt(row["access_token_encrypted"]),
                refresh_token=self._cipher.decrypt(row["refresh_token_encrypted"]),
                expires_at=int(row["expires_at"]),
            ),
        )

    def save_connection(
        self,
        user_id: str,
        tokens: StravaTokens,
        *,
        athlete_id: int | None = None,
        scopes: str | None = None,
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                Q("save_connection"),
                {
                    "user_id": user_id,
                    "athlete_id": athlete_id,
                    "scopes": scopes,
                    "access": self._cipher.encrypt(tokens.access_token.get_secret_value()),
                    "refresh": self._cipher.encrypt(tokens.refresh_token.get_secret_value()),
                    "expires_at": tokens.expires_at,
                },
            )

    def _active(self, user_id: str, row: dict[str, Any] | None) -> StravaConnection:
        return require_active(user_id, self._connection(row) if row is not None else None)

    def get(self, user_id: str) -> StravaConnection:
        with self._tx() as conn:
            row = (
                conn.cursor(row_factory=dict_row)
                .execute(Q("get_connection"), {"user_id": user_id})
                .fetchone()
            )
        return self._active(user_id, row)

    def update_tokens(
        self, user_id: str, update: Callable[[StravaTokens], StravaTokens]
    ) -> StravaTokens:
        with self._tx() as conn:
            row = (
                conn.cursor(row_factory=dict_row)
                .execute(Q("lock_connection"), {"user_id": user_id})
                .fetchone()
            )
            current = self._active(user_id, row).tokens
            new = update(current)
            if new != current:
                conn.execute(
                    Q("update_tokens"),
                    {
                        "user_id": user_id,
                        "access": self._cipher.encrypt(new.access_token.get_secret_value()),
                        "refresh": self._cipher.encrypt(new.refresh_token.get_secret_value()),
                        "expires_at": new.expires_at,
                    },
                )
        return new  # committed: only now may the new access token be used

    def mark_revoked(self, user_id: str, reason: str) -> None:
        with self._tx() as conn:
            conn.execute(Q("mark_revoked"), {"user_id": user_id, "reason": reason[:500]})

    def active_users(
        self, since: datetime, after_user: str = "", limit: int = 1000
    ) -> list[tuple[str, datetime]]:
        params = {"since": since, "after_user": after_user, "limit": limit}
        with self._tx() as conn:
            rows = conn.execute(Q("active_users"), params)
            return [(r[0], r[1].astimezone(UTC)) for r in rows]

    def list_connections(self, status: str | None = "active") -> list[StravaConnection]:
        with self._tx() as conn:
            rows = (
                conn.cursor(row_factory=dict_row)
                .execute(Q("list_connections"), {"status": status})
                .fetchall()
            )
        return [self._connection(r) for r in rows]

    def rotate_keys(self) -> int:
        """Re-encrypt every stored token with the newest key; returns rows rewritten."""
        with self._tx() as conn:
            rows = conn.cursor(row_factory=dict_row).execute(Q("rotate_tokens")).fetchall()
            for r in rows:
                conn.execute(
                    Q("rewrite_tokens"),
                    {
                        "user_id": r["user_id"],
                        "access": self._cipher.rotate(r["access_token_encrypted"]),
                        "refresh": self._cipher.rotate(r["refresh_token_encrypted"]),
                    },
                )
        return len(rows)

    # -- runs -----------------------------------------------------------------------------
    @staticmethod
    def _copy_rows(conn: psycopg.Connection, rows: Sequence[dict[str, Any]]) -> None:
        with conn.cursor() as cur, cur.copy(Q("copy_runs_stage")) as copy:
            for row in rows:
                copy.write_row([row[c] for c in RUNS_COLUMNS])

    def _merge(self, conn: psycopg.Connection) -> tuple[int, int]:
        flags = [r[0] for r in conn.execute(Q("merge_runs")).fetchall()]
        inserted = sum(1 for f in flags if f)
        return inserted, len(flags) - inserted

    def _store_batch(
        self, rows: Sequence[dict[str, Any]]
    ) -> tuple[StoreResult, list[QuarantineRecord]]:
        result, refused = StoreResult(), []
        with self._tx() as conn:
            conn.execute(Q("stage_runs"))
            try:
                with conn.transaction():  # savepoint: a refused row must not end the batch
                    self._copy_rows(conn, rows)
                    if self.before_merge:
                        self.before_merge(conn)
                    inserted, updated = self._merge(conn)
                result.saved, result.updated = inserted, updated
                result.skipped = len(rows) - inserted - updated
                return result, refused
            except (psycopg.DataError, psycopg.IntegrityError):
                pass  # somewhere in the batch is a row the database refuses: find it
            for row in rows:
                try:
                    with conn.transaction():
                        conn.execute(Q("truncate_stage"))
                        self._copy_rows(conn, [row])
                        inserted, updated = self._merge(conn)
                    result.saved += inserted
                    result.updated += updated
                    result.skipped += 1 - inserted - updated
                except (psycopg.DataError, psycopg.IntegrityError) as exc:
                    reason = f"database refused the row: {exc.diag.message_primary or exc}"
                    result.failed += 1
                    result.errors.append(reason)
                    refused.append(
                        QuarantineRecord(
                            user_id=row["user_id"],
                            strava_id=row["strava_id"],
                            reason=reason,
                            payload=row["strava_data"] or "",
                            source="store",
                        )
                    )
        return result, refused

    def upsert_runs(
        self, rows: Sequence[dict[str, Any]], session_id: str | None = None
    ) -> StoreResult:
        total = StoreResult()
        clean: list[dict[str, Any]] = []
        refused: list[QuarantineRecord] = []
        if session_id is not None:
            rows = [{**row, "sync_session_id": session_id} for row in rows]
        for row in rows:
            bad = next(
                (c for c in RUNS_COLUMNS if isinstance(row[c], str) and "\x00" in row[c]), None
            )
            if bad:  # PostgreSQL text cannot hold NUL: refuse here with a clear reason
                refused.append(
                    QuarantineRecord(
                        row["user_id"],
                        row["strava_id"],
                        f"column {bad} contains a NUL character",
                        (row["strava_data"] or "").replace("\x00", "\\u0000"),
                        "store",
                    )
                )
            else:
                clean.append(row)
        total.failed = len(refused)
        started = time.perf_counter()
        for i in range(0, len(clean), self.batch_size):
            batch = clean[i : i + self.batch_size]
            for attempt in self._retrying():
                with attempt:
                    result, batch_refused = self._store_batch(batch)
            total.add(result)
            refused.extend(batch_refused)
        if refused:
            self.quarantine(refused)
        total.seconds = time.perf_counter() - started
        return total

    def quarantine(self, records: Sequence[QuarantineRecord], session_id: str | None = None) -> int:
        if not records:
            return 0
        with self._tx() as conn, conn.cursor() as cur:
            cur.executemany(
                Q("insert_quarantine"),
                [
                    {
                        "user_id": r.user_id,
                        "strava_id": r.strava_id,
                        "reason": r.reason,
                        "payload": r.payload.replace("\x00", "\\u0000"),
                        "source": r.source,
                        "session_id": session_id,
                    }
                    for r in records
                ],
            )
        return len(records)

    def run_ids(self, user_id: str) -> list[int]:
        with self._tx() as conn:
            return [r[0] for r in conn.execute(Q("run_ids"), {"user_id": user_id})]

    def unstored_ids(self, user_id: str, ids: Sequence[int]) -> list[int]:
        with self._tx() as conn:
            params = {"user_id": user_id, "ids": list(ids)}
            return [r[0] for r in conn.execute(Q("unstored_ids"), params)]

    def pending_enrichment(self, now: datetime) -> list[tuple[str, datetime, int]]:
        with self._tx() as conn:
            return [
                (r[0], r[1].replace(tzinfo=UTC), r[2])
                for r in conn.execute(Q("pending_enrichment"), {"now": now})
            ]

    # -- Strava webhooks -------------------------------------------------------------------
    def record_webhook_event(self, event: dict[str, Any]) -> int | None:
        with self._tx() as conn:
            row = conn.execute(
                Q("record_webhook_event"), {**event, "updates": Jsonb(event["updates"])}
            ).fetchone()
            return row[0] if row else None

    def record_webhook_events(self, events: list[dict[str, Any]]) -> list[int | None]:
        if not events:
            return []
        # One statement, one round trip: `updates` goes as text, parsed as the one-row path does.
        batch = Jsonb([{**e, "updates": json.dumps(e["updates"])} for e in events])
        with self._tx() as conn:
            rows = conn.execute(Q("record_webhook_events"), {"events": batch}).fetchall()
        return [r[0] for r in rows]

    def webhook_events_after(self, after: int, limit: int = 1000) -> list[dict[str, Any]]:
        with self._tx() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q("webhook_events_after"), {"after": after, "limit": limit})
            return [{**r, "updates": json.loads(r["updates"])} for r in rows.fetchall()]

    def users_with_news(self) -> set[str]:
        with self._tx() as conn:
            return {r[0] for r in conn.execute(Q("users_with_news"))}

    def run_start(self, user_id: str, strava_id: int) -> datetime | None:
        with self._tx() as conn:
            row = conn.execute(
                Q("run_start"), {"user_id": user_id, "strava_id": strava_id}
            ).fetchone()
            return row[0].astimezone(UTC) if row else None

    def delete_run(self, user_id: str, strava_id: int) -> int:
        with self._tx() as conn:
            return conn.execute(
                Q("delete_run"), {"user_id": user_id, "strava_id": strava_id}
            ).rowcount

    def delete_unlisted_runs(
        self,
        user_id: str,
        window_start: datetime,
        window_end: datetime,
        listed: Sequence[int],
        listed_at: datetime,
    ) -> int:
        params = {
            "user_id": user_id,
            "window_start": window_start,
            "window_end": window_end,
            "listed": list(listed),
            "listed_at": listed_at,
        }
        with self._tx() as conn:
            return conn.execute(Q("delete_unlisted_runs"), params).rowcount

    def delete_user_data(self, user_id: str, reason: str) -> None:
        params = {"user_id": user_id, "reason": reason[:500], "blank": self._cipher.encrypt("")}
        with self._tx() as conn:
            for stmt in Q("delete_user_data").split(";\n"):
                if stmt.strip():
                    conn.execute(stmt, params)

    # -- the app-wide Strava budget ---------------------------------------------------------
    def budget_ensure(self, app: str) -> None:
        with self._tx() as conn:
            conn.execute(Q("budget_ensure"), {"app": app})

    def budget_take(self, app: str, **window: Any) -> bool:
        with self._tx() as conn:
            return conn.execute(Q("budget_take"), {"app": app, **window}).fetchone() is not None

    def budget_observe(self, app: str, **observed: Any) -> None:
        with self._tx() as conn:
            conn.execute(Q("budget_observe"), {"app": app, **observed})

    def budget_state(self, app: str) -> dict[str, Any] | None:
        with self._tx() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(Q("budget_state"), {"app": app}).fetchone()

    # -- weather cache ----------------------------------------------------------------------
    def weather_lookup(
        self, provider: str, keys: Collection[HourKey]
    ) -> dict[HourKey, HourlyWeather]:
        found: dict[HourKey, HourlyWeather] = {}
        keys = list(keys)
        for start in range(0, len(keys), self.batch_size * 4):
            chunk = keys[start : start + self.batch_size * 4]
            params = {
                "provider": provider,
                "lats": [k[0][0] for k in chunk],
                "lngs": [k[0][1] for k in chunk],
                "hours": [k[1] for k in chunk],
            }
            with self._tx() as conn, conn.cursor(row_factory=dict_row) as cur:
                for r in cur.execute(Q("weather_lookup"), params):
                    cell = (round(r.pop("cell_lat"), 2), round(r.pop("cell_lng"), 2))
                    hour = r.pop("hour_utc").astimezone(UTC)
                    found[(cell, hour)] = HourlyWeather(**r)
        return found

    @contextmanager
    def weather_lock(self, provider: str, cells: Collection[Cell]) -> Iterator[None]:
        """Hold these cells for this process until the block ends (see weather_lock.sql)."""
        keys = [f"weather:{provider}:{lat:.2f}:{lng:.2f}" for lat, lng in sorted(set(cells))]
        with self._tx() as conn:  # the locks live as long as this (otherwise idle) transaction
            for key in keys:
                conn.execute(Q("weather_lock"), {"key": key})
            yield

    def weather_store(self, provider: str, rows: Mapping[HourKey, HourlyWeather]) -> int:
        items = list(rows.items())
        stored = 0
        for start in range(0, len(items), self.batch_size * 4):
            chunk = items[start : start + self.batch_size * 4]
            params: dict[str, Any] = {
                "provider": provider,
                "lats": [k[0][0] for k, _ in chunk],
                "lngs": [k[0][1] for k, _ in chunk],
                "hours": [k[1] for k, _ in chunk],
            }
            for param, name in WEATHER_PARAMS.items():
                params[param] = [getattr(w, name) for _, w in chunk]
            for attempt in self._retrying():
                with attempt, self._tx() as conn:
                    stored += conn.execute(Q("weather_store"), params).rowcount
        return stored

    # -- staging --------------------------------------------------------------------------
    def stage_page(
        self, user_id: str, span: str, page: int, cursor: ListCursor, records: str
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                Q("stage_page"),
                {
                    "user_id": user_id,
                    "span": span,
                    "page": page,
                    "cursor_after": cursor.after,
                    "cursor_before": cursor.before,
                    "cursor_order": cursor.order,
                    "cursor_page": cursor.page,
                    "records": records,
                },
            )

    def staged_pages(
        self, user_id: str, span: str, max_age_seconds: int = STAGING_MAX_AGE
    ) -> list[StagedPage]:
        with self._tx() as conn:
            rows = conn.execute(
                Q("staged_pages"),
                {"user_id": user_id, "span": span, "max_age_seconds": max_age_seconds},
            ).fetchall()
        return [StagedPage.from_row(r) for r in rows]

    def clear_staging(self, user_id: str, span: str) -> None:
        with self._tx() as conn:
            conn.execute(Q("clear_staging"), {"user_id": user_id, "span": span})

    # -- sessions -------------------------------------------------------------------------
    def create_session(
        self,
        *,
        run_id: str,
        user_id: str,
        sync_type: str,
        time_range_start: datetime | None,
        time_range_end: datetime | None,
    ) -> SessionRecord:
        with self._tx() as conn:
            conn.execute(
                Q("create_session"),
                {
                    "run_id": run_id,
                    "user_id": user_id,
                    "sync_type": sync_type,
                    "time_range_start": time_range_start,
                    "time_range_end": time_range_end,
                },
            )
        session = self.get_session(run_id, user_id)
        assert session is not None
        return session

    def _one(self, name: str, params: dict[str, Any]) -> SessionRecord | None:
        with self._tx() as conn:
            row = conn.cursor(row_factory=dict_row).execute(Q(name), params).fetchone()
        return _session(row) if row else None

    def get_session(self, run_id: str, user_id: str) -> SessionRecord | None:
        return self._one("get_session", {"run_id": run_id, "user_id": user_id})

    def run_sessions(self, run_id: str) -> list[SessionRecord]:
        with self._tx() as conn:
            rows = (
                conn.cursor(row_factory=dict_row)
                .execute(Q("run_sessions"), {"run_id": run_id})
                .fetchall()
            )
        return [_session(r) for r in rows]

    def update_session(self, run_id: str, user_id: str, **changes: Any) -> SessionRecord:
        unknown = set(changes) - SESSION_FIELDS
        if unknown:
            raise ValueError(f"not session fields: {sorted(unknown)}")
        values = {
            k: Jsonb(v) if k in SESSION_JSON_FIELDS and v is not None else v
            for k, v in changes.items()
        }
        query = sql.SQL(
            "update public.sync_sessions set {} where dagster_run_id = {} and user_id = {}"
        ).format(
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in values
            ),
            sql.Placeholder("_run_id"),
            sql.Placeholder("_user_id"),
        )
        with self._tx() as conn:
            conn.execute(query, {**values, "_run_id": run_id, "_user_id": user_id})
        session = self.get_session(run_id, user_id)
        if session is None:
            raise SyncError(
                ErrorType.DATABASE, f"no sync session for run {run_id}", retryable=False
            )
        return session

    def open_sessions(self) -> list[SessionRecord]:
        with self._tx() as conn:
            rows = conn.cursor(row_factory=dict_row).execute(Q("open_sessions")).fetchall()
        return [_session(r) for r in rows]

    def recent_sessions(self, user_id: str | None = None, limit: int = 20) -> list[SessionRecord]:
        params = {"user_id": user_id, "limit": limit}
        with self._tx() as conn:
            cur = conn.cursor(row_factory=dict_row)
            rows = cur.execute(Q("recent_sessions"), params).fetchall()
        return [_session(r) for r in rows]

    # -- sync metrics ---------------------------------------------------------------------
    def record_step_metrics(self, metrics: StepMetrics) -> None:
        for attempt in self._retrying():
            with attempt, self._tx() as conn:
                conn.execute(Q("record_step_metrics"), asdict(metrics))

    def step_metrics(
        self,
        *,
        since: datetime,
        api: str | None = None,
        step: str | None = None,
        sync_id: str | None = None,
    ) -> list[StepMetrics]:
        params = {"since": since, "api": api, "step": step, "sync_id": sync_id}
        with self._tx() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q("step_metrics"), params).fetchall()
        return [StepMetrics(**{**r, "recorded_at": r["recorded_at"].astimezone(UTC)}) for r in rows]

    def metrics_view(self, name: str) -> list[dict[str, Any]]:
        if name not in METRICS_VIEWS:
            raise ValueError(f"not a metrics view: {name!r} (one of {', '.join(METRICS_VIEWS)})")
        with self._tx() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(Q(f"metrics_{name}")).fetchall()
