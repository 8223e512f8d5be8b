"""The store's operations, written once for both backends.

`SqlStore` implements `base.Store` over a DB-API connection (psycopg's or sqlite3's, both with
`execute` returning a cursor) and SQL files rendered by its `dialect` (see `dialect.py`, the one
place where PostgreSQL and SQLite differ in SQL and values). A backend subclass brings:

    _read() / _write()   a connection for one operation: PostgreSQL takes one from its pool
                         in a transaction for both; SQLite reads in autocommit and writes
                         under `BEGIN IMMEDIATE` (its lock, taken first)
    _dicts()             rows as dicts (psycopg's dict_row, sqlite3.Row)
    _store_batch()       one batch of runs (an Arrow slice): COPY of Arrow-written CSV and one
                         merge on PostgreSQL, one executemany on SQLite
    migrate(), close(), the weather cache, and its fast paths as overrides
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from tenacity import Retrying

from sync_assets.core.clients.strava_listing import ListCursor
from sync_assets.core.clients.tokens import StravaConnection, StravaTokens
from sync_assets.core.errors import ErrorType, SyncError
from sync_assets.core.storage.base import (
    DEAUTHORIZED_STATUS,
    METRICS_VIEWS,
    RUNS_SCHEMA,
    SESSION_FIELDS,
    SESSION_JSON_FIELDS,
    STAGED_PAGES_ALL,
    STAGED_PAGES_BATCH,
    STAGING_MAX_AGE,
    ClosedOnExit,
    DeauthorizedError,
    LeaseHolder,
    LeaseLost,
    ListingWatermark,
    QuarantineRecord,
    SessionRecord,
    StagedPage,
    StepMetrics,
    StoreResult,
    require_active,
    runs_table,
)
from sync_assets.core.storage.crypto import TokenCipher
from sync_assets.core.storage.dialect import Dialect, day, utc
from sync_assets.core.storage.retry import call, retrying, unit_of_work

BATCH_SIZE = 5_000
# The runs columns holding text (where a NUL or broken UTF-8 could hide), in RUNS_COLUMNS order.
TEXT_COLUMNS: tuple[str, ...] = tuple(f.name for f in RUNS_SCHEMA if f.type == pa.string())
SESSION_COLUMN = RUNS_SCHEMA.get_field_index("sync_session_id")
SESSION_TIMES = (
    "time_range_start",
    "time_range_end",
    "started_at",
    "completed_at",
    "last_activity_at",
)


class SqlStore(ClosedOnExit):
    dialect: Dialect
    batch_size: int = BATCH_SIZE
    _cipher: TokenCipher
    _retries = 0  # extra attempts of a write whose connection dropped
    _retry_on: tuple[type[BaseException], ...] = ()

    # -- what a backend provides ------------------------------------------------------------
    def _read(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _dicts(self, conn: Any, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _encode(self, runs: pa.Table) -> Any:
        """`runs` (a slice of `RUNS_SCHEMA` rows) as `_store_batch` sends them."""
        raise NotImplementedError

    def _batches(self, runs: pa.Table, size: int) -> Iterator[tuple[pa.Table, Any]]:
        """`runs` a batch (`size` rows) at a time, each with its `_encode`."""
        for start in range(0, runs.num_rows, size):
            batch = runs.slice(start, size)
            yield batch, self._encode(batch)

    def _store_batch(
        self, runs: pa.Table, encoded: Any
    ) -> tuple[StoreResult, list[QuarantineRecord]]:
        """One transaction: store `runs` (a slice of `RUNS_SCHEMA` rows; `encoded`: its
        `_encode`), replaying it row by row in savepoints if the database refuses one; the
        refused rows' quarantine records."""
        raise NotImplementedError

    def connection_usage(self) -> dict[str, int] | None:
        return None  # no server whose connection limit could be reached

    def take_pool_stats(self) -> dict[str, int] | None:
        return None  # no pool to exhaust

    # -- helpers --------------------------------------------------------------------------
    def _q(self, name: str) -> str:
        return self.dialect.sql(name)

    def _rows(self, conn: Any, name: str, params: dict[str, Any] | None = None) -> list[Any]:
        return conn.execute(self._q(name), params or {}).fetchall()

    def _all(self, conn: Any, name: str, params: dict[str, Any] | None = None) -> list[dict]:
        return self._dicts(conn, self._q(name), params or {})

    def _first(self, conn: Any, name: str, params: dict[str, Any] | None = None) -> dict | None:
        rows = self._all(conn, name, params)
        return rows[0] if rows else None

    def _run(self, conn: Any, name: str, params: dict[str, Any] | None = None) -> int:
        """Execute `name`, its `;`-separated statements in order; the last one's rowcount."""
        count = 0
        for stmt in self._q(name).split(";\n"):
            if stmt.strip():
                count = conn.execute(stmt, params or {}).rowcount
        return count

    def _refuse_deauthorized(self, conn: Any, user_ids: Iterable[str]) -> None:
        """Raise `DeauthorizedError` if one of these users deauthorized the app: called first
        in every transaction writing a user's data (`writable_connection.sql` says why it
        holds against a concurrent deletion). A user without a connection row is written as
        before (data imported, tests): only a deauthorization forbids."""
        for user_id in sorted(set(user_ids)):  # one order: two writers never deadlock here
            rows = self._rows(conn, "writable_connection", {"user_id": user_id})
            if rows and rows[0][0] == DEAUTHORIZED_STATUS:
                raise DeauthorizedError(user_id)

    def _retrying(self) -> Retrying:
        """A loop retrying a dropped connection under the store's policy (`retry.py`)."""
        return retrying(self._retry_on, type(self).__name__)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A backend's own versions of the units of work are retried like the shared ones."""
        super().__init_subclass__(**kwargs)
        _retry_units(cls)

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

    def _active(self, user_id: str, row: dict[str, Any] | None) -> StravaConnection:
        return require_active(user_id, self._connection(row) if row is not None else None)

    def _tokens(self, tokens: StravaTokens) -> dict[str, Any]:
        return {
            "access": self._cipher.encrypt(tokens.access_token.get_secret_value()),
            "refresh": self._cipher.encrypt(tokens.refresh_token.get_secret_value()),
            "expires_at": tokens.expires_at,
        }

    def save_connection(
        self,
        user_id: str,
        tokens: StravaTokens,
        *,
        athlete_id: int | None = None,
        scopes: str | None = None,
    ) -> None:
        params = {"user_id": user_id, "athlete_id": athlete_id, "scopes": scopes}
        with self._write() as conn:
            self._run(conn, "save_connection", {**params, **self._tokens(tokens)})

    def connect_athlete(
        self, user_id: str, tokens: StravaTokens, *, athlete_id: int, scopes: str | None
    ) -> str | None:
        params = {"user_id": user_id, "athlete_id": athlete_id, "scopes": scopes}
        with self._write() as conn:
            self._rows(conn, "lock_athlete", {"athlete_id": athlete_id})
            holder = self._first(conn, "athlete_holder", params)
            if holder is not None:
                return str(holder["user_id"])
            self._run(conn, "save_connection", {**params, **self._tokens(tokens)})
        return None

    def use_oauth_state(self, nonce: str, expires_at: int, now: int) -> bool:
        with self._write() as conn:
            self._run(conn, "prune_oauth_states", {"now": now})
            row = conn.execute(
                self._q("use_oauth_state"), {"nonce": nonce, "expires_at": expires_at}
            ).fetchone()
        return row is not None

    def get(self, user_id: str) -> StravaConnection:
        with self._read() as conn:
            row = self._first(conn, "get_connection", {"user_id": user_id})
        return self._active(user_id, row)

    def update_tokens(
        self, user_id: str, update: Callable[[StravaTokens], StravaTokens]
    ) -> StravaTokens:
        # The row stays locked (PostgreSQL: FOR UPDATE; SQLite: BEGIN IMMEDIATE) until commit:
        # concurrent refreshers queue up here and then see the tokens the winner committed.
        # Retried on a dropped connection, but `update` (a refresh at Strava, which may rotate
        # the refresh token) runs once: a retry commits the tokens it returned, unless another
        # process changed them meanwhile (then those are the ones to use).
        refreshed: list[tuple[StravaTokens, StravaTokens]] = []  # (from, to)

        def attempt() -> StravaTokens:
            with self._write() as conn:
                row = self._first(conn, "lock_connection", {"user_id": user_id})
                current = self._active(user_id, row).tokens
                if refreshed and refreshed[0][0] != current:
                    return current
                new = refreshed[0][1] if refreshed else update(current)
                if not refreshed:
                    refreshed.append((current, new))
                if new != current:
                    self._run(conn, "update_tokens", {"user_id": user_id, **self._tokens(new)})
            return new  # committed: only now may the new access token be used

        return call(attempt, self._retry_on, "update_tokens")

    def connection_status(self, user_id: str) -> str | None:
        with self._read() as conn:
            rows = self._rows(conn, "writable_connection", {"user_id": user_id})
        return rows[0][0] if rows else None

    def mark_revoked(self, user_id: str, reason: str) -> None:
        with self._write() as conn:
            self._run(conn, "mark_revoked", {"user_id": user_id, "reason": reason[:500]})

    def active_users(
        self, since: datetime, after_user: str = "", limit: int = 1000
    ) -> list[tuple[str, datetime]]:
        params = {"since": self.dialect.clock(since), "after_user": after_user, "limit": limit}
        with self._read() as conn:
            return [(r[0], utc(r[1])) for r in self._rows(conn, "active_users", params)]

    def list_connections(self, status: str | None = "active") -> list[StravaConnection]:
        with self._read() as conn:
            rows = self._all(conn, "list_connections", {"status": status})
        return [self._connection(r) for r in rows]

    def rotate_keys(self) -> int:
        """Re-encrypt every stored token with the newest key; returns rows rewritten."""
        with self._write() as conn:
            rows = self._all(conn, "rotate_tokens")
            for r in rows:
                self._run(
                    conn,
                    "rewrite_tokens",
                    {
                        "user_id": r["user_id"],
                        "access": self._cipher.rotate(r["access_token_encrypted"]),
                        "refresh": self._cipher.rotate(r["refresh_token_encrypted"]),
                    },
                )
        return len(rows)

    # -- runs -----------------------------------------------------------------------------
    def upsert_runs_table(
        self, table: pa.Table, session_id: str | None = None, batch_size: int | None = None
    ) -> StoreResult:
        return self._upsert(runs_table(table, session_id=session_id), session_id, batch_size)

    def upsert_runs(
        self, rows: Sequence[dict[str, Any]], session_id: str | None = None
    ) -> StoreResult:
        # A lone surrogate cannot be text in Arrow (nor in either database): this raises
        # UnicodeEncodeError before anything is written.
        runs = pa.Table.from_pylist(list(rows), schema=RUNS_SCHEMA)
        if session_id is not None:
            runs = runs.set_column(
                SESSION_COLUMN,
                "sync_session_id",
                pa.repeat(pa.scalar(session_id, pa.string()), runs.num_rows),
            )
        return self._upsert(runs, session_id)

    def _upsert(
        self, runs: pa.Table, session_id: str | None = None, batch_size: int | None = None
    ) -> StoreResult:
        """Store `runs` (`RUNS_SCHEMA`) a batch per transaction (`_store_batch`; `batch_size`
        rows, default the store's), a batch whose connection dropped again on a fresh one;
        quarantine what the database cannot hold (naming `session_id`, the session's
        failedActivities)."""
        for column in TEXT_COLUMNS:
            # Text that is not UTF-8 (Arrow never makes it, a foreign file might hold it):
            # ArrowInvalid before anything is written, as decoding it would raise.
            runs.column(column).validate(full=True)
        total = StoreResult()
        runs, refused = self._refuse_nul(runs)
        total.failed = len(refused)
        started = time.perf_counter()
        size = batch_size or self.batch_size
        with contextlib.closing(self._batches(runs, size)) as batches:
            for batch, encoded in batches:
                result, batch_refused = call(
                    functools.partial(self._store_batch, batch, encoded),
                    self._retry_on,
                    "upsert_runs",
                )
                total.add(result)
                total.batches += 1
                refused.extend(batch_refused)
        if refused:
            self.quarantine(refused, session_id=session_id)
        total.seconds = time.perf_counter() - started
        return total

    def _refuse_nul(self, runs: pa.Table) -> tuple[pa.Table, list[QuarantineRecord]]:
        """`runs` without the rows whose text holds a NUL where the database cannot store one
        (PostgreSQL's text), and those rows' quarantine records naming the first such column.
        One vectorized search per text column; Python only for the rows found."""
        if self.dialect.text_holds_nul or not runs.num_rows:
            return runs, []
        hits: dict[str, pa.ChunkedArray] = {}
        for column in TEXT_COLUMNS:
            # RE2 finds a one-byte literal with memchr: several times match_substring's speed.
            found = pc.match_substring_regex(runs.column(column), r"\x00")
            if pc.any(found).as_py():
                hits[column] = pc.fill_null(found, False)
        if not hits:
            return runs, []
        bad = functools.reduce(pc.or_, hits.values())
        refused = []
        for i in pc.indices_nonzero(bad).to_pylist():
            column = next(c for c in hits if hits[c][i].as_py())
            refused.append(
                QuarantineRecord(
                    runs.column("user_id")[i].as_py(),
                    runs.column("strava_id")[i].as_py(),
                    f"column {column} contains a NUL character",
                    self.dialect.nul_free(runs.column("strava_data")[i].as_py() or ""),
                    "store",
                )
            )
        return runs.filter(pc.invert(bad)), refused

    def quarantine(self, records: Sequence[QuarantineRecord], session_id: str | None = None) -> int:
        if not records:
            return 0
        params = [
            {
                "user_id": r.user_id,
                "strava_id": r.strava_id,
                "reason": r.reason,
                "payload": self.dialect.nul_free(r.payload),
                "source": r.source,
                "session_id": session_id,
            }
            for r in records
        ]
        with self._write() as conn:
            self._refuse_deauthorized(conn, (r.user_id for r in records))
            conn.cursor().executemany(self._q("insert_quarantine"), params)
        return len(records)

    def run_ids(self, user_id: str) -> list[int]:
        with self._read() as conn:
            return [r[0] for r in self._rows(conn, "run_ids", {"user_id": user_id})]

    def unstored_ids(self, user_id: str, ids: Sequence[int]) -> list[int]:
        params = {"user_id": user_id, "ids": self.dialect.ids(ids)}
        with self._read() as conn:
            return [r[0] for r in self._rows(conn, "unstored_ids", params)]

    def pending_enrichment(self, now: datetime) -> list[tuple[str, datetime, int]]:
        params = {"now": self.dialect.when(now)}
        with self._read() as conn:
            rows = self._rows(conn, "pending_enrichment", params)
        return [(r[0], utc(r[1]), r[2]) for r in rows]

    # -- Strava webhooks -------------------------------------------------------------------
    def _event(self, event: dict[str, Any]) -> dict[str, Any]:
        return {**event, "updates": self.dialect.json(event["updates"])}

    def record_webhook_event(self, event: dict[str, Any]) -> int | None:
        with self._write() as conn:
            row = conn.execute(self._q("record_webhook_event"), self._event(event)).fetchone()
            return row[0] if row else None

    def record_webhook_events(self, events: list[dict[str, Any]]) -> list[int | None]:
        # One transaction: its one COMMIT (the fsync) is what a batch saves.
        if not events:
            return []
        ids: list[int | None] = []
        with self._write() as conn:
            for event in events:
                row = conn.execute(self._q("record_webhook_event"), self._event(event)).fetchone()
                ids.append(row[0] if row else None)
        return ids

    def webhook_events_after(self, after: int, limit: int = 1000) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = self._all(conn, "webhook_events_after", {"after": after, "limit": limit})
        return [{**r, "updates": json.loads(r["updates"])} for r in rows]

    def users_with_news(self) -> set[str]:
        with self._read() as conn:
            return {r[0] for r in self._rows(conn, "users_with_news")}

    def run_start(self, user_id: str, strava_id: int) -> datetime | None:
        with self._read() as conn:
            rows = self._rows(conn, "run_start", {"user_id": user_id, "strava_id": strava_id})
        return utc(rows[0][0]) if rows else None

    def delete_run(self, user_id: str, strava_id: int) -> int:
        with self._write() as conn:
            return self._run(conn, "delete_run", {"user_id": user_id, "strava_id": strava_id})

    def delete_unlisted_runs(
        self,
        user_id: str,
        window_start: datetime,
        window_end: datetime,
        listed: Sequence[int],
        listed_at: datetime,
    ) -> int:
        d = self.dialect
        params = {
            "user_id": user_id,
            "window_start": d.when(window_start),
            "window_end": d.when(window_end),
            "listed": d.ids(listed),
            "listed_at": d.clock(listed_at),
        }
        with self._write() as conn:
            return self._run(conn, "delete_unlisted_runs", params)

    def delete_user_data(self, user_id: str, reason: str) -> None:
        params = {"user_id": user_id, "reason": reason[:500], "blank": self._cipher.encrypt("")}
        with self._write() as conn:
            # The connection row first (`for update`): a write of this user's data in flight
            # holds it `for share` and commits before the deletes below run; a later one
            # waits for this commit and refuses (`_refuse_deauthorized`).
            self._rows(conn, "lock_connection", {"user_id": user_id})
            self._run(conn, "delete_user_events", params)
            self._run(conn, "delete_user_data", params)

    # -- incremental syncs -----------------------------------------------------------------
    def stored_activities(
        self, user_id: str, window_start: datetime, window_end: datetime
    ) -> list[tuple[int, str | None]]:
        d = self.dialect
        params = {
            "user_id": user_id,
            "window_start": d.when(window_start),
            "window_end": d.when(window_end),
        }
        with self._read() as conn:
            return [(r[0], r[1]) for r in self._rows(conn, "stored_activities", params)]

    def listing_watermark(self, user_id: str) -> ListingWatermark | None:
        with self._read() as conn:
            rows = self._rows(conn, "listing_watermark", {"user_id": user_id})
        if not rows:
            return None
        listed_from, listed_through = (utc(v) for v in rows[0])
        assert listed_from is not None and listed_through is not None  # NOT NULL columns
        return ListingWatermark(listed_from, listed_through)

    def advance_listing_watermark(self, user_id: str, watermark: ListingWatermark) -> None:
        d = self.dialect
        params = {
            "user_id": user_id,
            "listed_from": d.when(watermark.listed_from),
            "listed_through": d.when(watermark.listed_through),
        }
        with self._write() as conn:
            self._refuse_deauthorized(conn, [user_id])
            self._run(conn, "advance_listing_watermark", params)

    # -- the app-wide Strava budget ---------------------------------------------------------
    def budget_ensure(self, app: str) -> None:
        with self._write() as conn:
            self._run(conn, "budget_ensure", {"app": app})

    def budget_take(self, app: str, **window: Any) -> bool:
        with self._write() as conn:
            return bool(self._rows(conn, "budget_take", {"app": app, **window}))

    def budget_observe(self, app: str, **observed: Any) -> None:
        with self._write() as conn:
            self._run(conn, "budget_observe", {"app": app, **observed})

    def budget_state(self, app: str) -> dict[str, Any] | None:
        with self._read() as conn:
            return self._first(conn, "budget_state", {"app": app})

    # -- staging --------------------------------------------------------------------------
    def _require_lease(self, conn: Any, user_id: str, run_id: str | None) -> None:
        """Within a write: `run_id` holds `user_id` (the row stays locked until commit)."""
        if run_id is not None and not self._rows(
            conn, "lease_held", {"user_id": user_id, "run_id": run_id}
        ):
            raise LeaseLost(user_id, run_id)

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
        params = {
            "user_id": user_id,
            "span": span,
            "page": page,
            "cursor_after": cursor.after,
            "cursor_before": cursor.before,
            "cursor_order": cursor.order,
            "cursor_page": cursor.page,
            "records": records,
            "run_id": run_id,
        }
        with self._write() as conn:
            self._refuse_deauthorized(conn, [user_id])
            self._require_lease(conn, user_id, run_id)
            self._run(conn, "stage_page", params)

    def adopt_staging(self, user_id: str, span: str, run_id: str) -> int:
        with self._write() as conn:
            self._refuse_deauthorized(conn, [user_id])
            self._require_lease(conn, user_id, run_id)
            params = {"user_id": user_id, "span": span, "run_id": run_id}
            return self._run(conn, "adopt_staging", params)

    # -- one run per user -------------------------------------------------------------------
    def lease_take(
        self, user_id: str, run_id: str, ttl_seconds: float, *, ended_run: str | None = None
    ) -> bool:
        params = {
            "user_id": user_id,
            "run_id": run_id,
            "ttl_seconds": float(ttl_seconds),
            "ended_run": ended_run,
        }
        with self._write() as conn:
            return bool(self._rows(conn, "lease_take", params))

    def lease_holder(self, user_id: str) -> LeaseHolder | None:
        with self._read() as conn:
            row = self._first(conn, "lease_holder", {"user_id": user_id})
        if row is None:
            return None
        return LeaseHolder(
            row["run_id"],
            self.dialect.timestamp(row["acquired_at"]),
            self.dialect.timestamp(row["renewed_at"]),
            bool(row["expired"]),
        )

    def lease_renew(self, user_id: str, run_id: str) -> bool:
        with self._write() as conn:
            return self._run(conn, "lease_renew", {"user_id": user_id, "run_id": run_id}) > 0

    def lease_release(self, user_id: str, run_id: str) -> None:
        with self._write() as conn:
            self._run(conn, "lease_release", {"user_id": user_id, "run_id": run_id})

    def staged_pages(
        self,
        user_id: str,
        span: str,
        max_age_seconds: int = STAGING_MAX_AGE,
        *,
        after_page: int = 0,
        limit: int | None = None,
    ) -> list[StagedPage]:
        params = {
            "user_id": user_id,
            "span": span,
            "max_age_seconds": max_age_seconds,
            "after_page": after_page,
            "limit": STAGED_PAGES_ALL if limit is None else limit,
        }
        with self._read() as conn:
            rows = self._rows(conn, "staged_pages", params)
        return [StagedPage.from_row(r) for r in rows]

    def iter_staged_pages(
        self, user_id: str, span: str, batch: int = STAGED_PAGES_BATCH
    ) -> Iterator[StagedPage]:
        """The staged pages in order, `batch` at a time: a resume holds a few pages of
        JSON text, not the whole listing's."""
        after = 0
        while True:
            pages = self.staged_pages(user_id, span, after_page=after, limit=batch)
            yield from pages
            if len(pages) < batch:
                return
            after = pages[-1].page

    def clear_staging(self, user_id: str, span: str, *, after_page: int = 0) -> None:
        params = {"user_id": user_id, "span": span, "after_page": after_page}
        with self._write() as conn:
            self._run(conn, "clear_staging", params)

    # -- sessions -------------------------------------------------------------------------
    def _session(self, row: dict[str, Any]) -> SessionRecord:
        d = self.dialect
        for k in SESSION_JSON_FIELDS:
            row[k] = d.loads(row[k])
        for k in SESSION_TIMES:
            row[k] = d.timestamp(row[k])
        return SessionRecord.from_row(row)

    def _sessions(self, name: str, params: dict[str, Any] | None = None) -> list[SessionRecord]:
        with self._read() as conn:
            rows = self._all(conn, name, params)
        return [self._session(r) for r in rows]

    def create_session(
        self,
        *,
        run_id: str,
        user_id: str,
        sync_type: str,
        time_range_start: datetime | None,
        time_range_end: datetime | None,
    ) -> SessionRecord:
        params = {
            "id": str(uuid.uuid4()),
            "run_id": run_id,
            "user_id": user_id,
            "sync_type": sync_type,
            "time_range_start": self.dialect.when(time_range_start),
            "time_range_end": self.dialect.when(time_range_end),
        }
        with self._write() as conn:
            self._refuse_deauthorized(conn, [user_id])
            self._run(conn, "create_session", params)
        session = self.get_session(run_id, user_id)
        assert session is not None
        return session

    def get_session(self, run_id: str, user_id: str) -> SessionRecord | None:
        sessions = self._sessions("get_session", {"run_id": run_id, "user_id": user_id})
        return sessions[0] if sessions else None

    def run_sessions(self, run_id: str) -> list[SessionRecord]:
        return self._sessions("run_sessions", {"run_id": run_id})

    def update_session(self, run_id: str, user_id: str, **changes: Any) -> SessionRecord:
        unknown = set(changes) - SESSION_FIELDS
        if unknown:
            raise ValueError(f"not session fields: {sorted(unknown)}")
        d = self.dialect
        values = {
            # SQLite: to the millisecond, as the started_at default writes: durations stay exact.
            k: d.json(v) if k in SESSION_JSON_FIELDS and v is not None else d.clock(v)
            for k, v in changes.items()
        }
        assignments = ", ".join(f'"{k}" = :{k}' for k in values)  # names checked above
        query = d.sql("update_session", assignments=assignments)
        with self._write() as conn:
            self._refuse_deauthorized(conn, [user_id])
            conn.execute(query, {**values, "_run_id": run_id, "_user_id": user_id})
        session = self.get_session(run_id, user_id)
        if session is None:
            raise SyncError(
                ErrorType.DATABASE, f"no sync session for run {run_id}", retryable=False
            )
        return session

    def open_sessions(self) -> list[SessionRecord]:
        return self._sessions("open_sessions")

    def resolve_errors(self, session: SessionRecord) -> int:
        if None in (session.started_at, session.time_range_start, session.time_range_end):
            return 0  # no window to compare
        d = self.dialect
        params = {
            "user_id": session.user_id,
            "session_id": session.id,
            "started_at": d.clock(session.started_at),
            "time_range_start": d.when(session.time_range_start),
            "time_range_end": d.when(session.time_range_end),
        }
        with self._write() as conn:
            return self._run(conn, "resolve_errors", params)

    def recent_sessions(self, user_id: str | None = None, limit: int = 20) -> list[SessionRecord]:
        return self._sessions("recent_sessions", {"user_id": user_id, "limit": limit})

    def session_by_id(self, session_id: str) -> SessionRecord | None:
        sessions = self._sessions("session_by_id", {"id": session_id})
        return sessions[0] if sessions else None

    def session_quarantine(self, session_id: str, limit: int = 100) -> list[dict[str, Any]]:
        with self._read() as conn:
            return self._all(conn, "session_quarantine", {"session_id": session_id, "limit": limit})

    # -- sync metrics ---------------------------------------------------------------------
    def record_step_metrics(self, metrics: StepMetrics) -> None:
        params = {**asdict(metrics), "recorded_at": self.dialect.clock(metrics.recorded_at)}
        with self._write() as conn:
            self._run(conn, "record_step_metrics", params)

    def step_metrics(
        self,
        *,
        since: datetime,
        api: str | None = None,
        step: str | None = None,
        sync_id: str | None = None,
    ) -> list[StepMetrics]:
        params = {"since": self.dialect.clock(since), "api": api, "step": step, "sync_id": sync_id}
        with self._read() as conn:
            rows = self._all(conn, "step_metrics", params)
        return [StepMetrics(**{**r, "recorded_at": utc(r["recorded_at"])}) for r in rows]

    def metrics_view(self, name: str) -> list[dict[str, Any]]:
        if name not in METRICS_VIEWS:
            raise ValueError(f"not a metrics view: {name!r} (one of {', '.join(METRICS_VIEWS)})")
        with self._read() as conn:
            rows = self._all(conn, f"metrics_{name}")
        for row in rows:  # 'YYYY-MM-DD' text in SQLite, a date in PostgreSQL
            if row.get("day") is not None:
                row["day"] = day(row["day"])
        return rows


# Store operations retried whole when their connection drops (`retry.unit_of_work`): each may
# run twice (reads; upserts; updates setting values; deletes; inserts ignoring a conflict; a
# budget take counted twice errs on the safe side). Not here: the runs upsert and the token
# update (retried inside, see there), `iter_staged_pages` (made of `staged_pages`), the weather
# lock (a transaction held open across HTTP requests: `retry.locks_held`), and spending an
# OAuth state (`use_oauth_state`: a spend retried after its commit would read as a replay).
UNITS_OF_WORK = frozenset(
    {
        "save_connection",
        "connect_athlete",
        "connection_status",
        "get",
        "mark_revoked",
        "active_users",
        "list_connections",
        "rotate_keys",
        "quarantine",
        "run_ids",
        "unstored_ids",
        "pending_enrichment",
        "record_webhook_event",
        "record_webhook_events",
        "webhook_events_after",
        "users_with_news",
        "run_start",
        "delete_run",
        "delete_unlisted_runs",
        "delete_user_data",
        "stored_activities",
        "listing_watermark",
        "advance_listing_watermark",
        "budget_ensure",
        "budget_take",
        "budget_observe",
        "budget_state",
        "stage_page",
        "adopt_staging",
        "staged_pages",
        "clear_staging",
        "lease_take",
        "lease_holder",
        "lease_renew",
        "lease_release",
        "create_session",
        "get_session",
        "run_sessions",
        "update_session",
        "open_sessions",
        "resolve_errors",
        "recent_sessions",
        "session_by_id",
        "session_quarantine",
        "record_step_metrics",
        "step_metrics",
        "metrics_view",
        "weather_lookup",
        "weather_store",
        "connection_usage",
    }
)


def _retry_units(cls: type) -> None:
    for name in UNITS_OF_WORK:
        method = cls.__dict__.get(name)
        if method is not None and not getattr(method, "__unit_of_work__", False):
            setattr(cls, name, unit_of_work(method))


_retry_units(SqlStore)
