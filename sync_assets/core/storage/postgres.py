"""The production backend: PostgreSQL (Supabase's direct connection or any transaction pooler).

The operations are `SqlStore`'s; this class brings the pool and PostgreSQL's fast paths.

Writes go through a connection pool. Runs are stored with COPY (CSV that Arrow writes from the
runs table: no Python object per row) into a per-transaction staging table and one
`INSERT ... ON CONFLICT DO UPDATE ... WHERE ... IS DISTINCT FROM` per batch: one round trip for
thousands of rows, unchanged rows skipped. A batch is one transaction: if the
database refuses a row, the batch is replayed row by row inside savepoints, the refused rows are
quarantined with the database's reason and the rest is stored; if the connection drops, the
transaction is gone and the whole batch is retried on a fresh connection.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg.rows import dict_row
from psycopg.types.json import Json, Jsonb
from psycopg_pool import ConnectionPool
from pyarrow import csv

from sync_assets.core.clients.weather import (
    Cell,
    DayKey,
    DayWeather,
    HourKey,
    HourlyWeather,
    cache_rows,
    day_and_hour,
    hour_at,
)
from sync_assets.core.migrations import migrate_postgres
from sync_assets.core.storage.base import (
    WEATHER_PARAMS,
    QuarantineRecord,
    StoreResult,
)
from sync_assets.core.storage.crypto import TokenCipher
from sync_assets.core.storage.dialect import POSTGRES
from sync_assets.core.storage.retry import locks_held
from sync_assets.core.storage.sqlstore import BATCH_SIZE, SqlStore

log = logging.getLogger(__name__)
# The staging COPY's CSV (copy_runs_stage.sql: RUNS_COLUMNS in order, no header), written and
# sent CSV_CHUNK rows (~1.5 MB) at a time.
_CSV = csv.WriteOptions(include_header=False)
CSV_CHUNK = 1_000


def _ready(value: pa.Buffer) -> Future[pa.Buffer]:
    """A chunk written inline, as a done future (what the COPY reads is futures)."""
    done: Future[pa.Buffer] = Future()
    done.set_result(value)
    return done


def Q(name: str) -> str:  # noqa: N802 - reads like a constant
    return POSTGRES.sql(name)


class PostgresStore(SqlStore):
    dialect = POSTGRES
    _retry_on = (psycopg.OperationalError,)

    def __init__(
        self,
        database_url: str,
        cipher: TokenCipher,
        *,
        prepare_threshold: int | None = None,
        min_size: int = 1,
        max_size: int = 4,
        batch_size: int = BATCH_SIZE,
        retries: int = 3,
    ) -> None:
        self._cipher = cipher
        self.batch_size = batch_size
        self._retries = retries
        # No server-side prepared statements, whatever the URL: behind a transaction pooler
        # (Supavisor, PgBouncer before 1.21 or without max_prepared_statements) a statement
        # prepared on one server connection is missing, or already taken by another client,
        # on the next, and a pooler cannot be told from its URL (PgBouncer listens on 6432 by
        # default, anywhere in fact). Measured, they save nothing worth the risk (README,
        # "Through a transaction pooler"); `prepare_threshold` is psycopg's, for the bench.
        kwargs: dict[str, Any] = {"autocommit": False, "prepare_threshold": prepare_threshold}
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
            return self._first(conn, "connection_usage")

    def take_pool_stats(self) -> dict[str, int] | None:
        """The pool's counters since the last call (psycopg_pool's `pop_stats`): requests that
        queued for a connection, their wait, timeouts, `pool_max`."""
        return self._pool.pop_stats()

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection]:
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    _read = _write = _tx

    def _dicts(self, conn: Any, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return conn.cursor(row_factory=dict_row).execute(sql, params).fetchall()

    def migrate(self) -> list[str]:
        with self._pool.connection() as conn:
            return migrate_postgres(conn)

    # -- runs: COPY into a staging table, one merge ------------------------------------------
    @staticmethod
    def _csv(runs: pa.Table) -> pa.Buffer:
        """`runs` as the CSV the staging COPY reads, written by Arrow column by column: no
        Python object per row or value. Arrow's CSV is what PostgreSQL's reads back: a null
        is an empty unquoted field, text is always quoted (so "" is the empty string, and a
        line of `\\.` inside a value is data), times are ISO 8601 with a Z, floats are the
        shortest decimal that reads back as the same double."""
        sink = pa.BufferOutputStream()
        csv.write_csv(runs, sink, _CSV)
        return sink.getvalue()

    def _encode(self, runs: pa.Table) -> list[Future[pa.Buffer]]:
        return [_ready(self._csv(runs))]

    def _batches(self, runs: pa.Table, size: int) -> Iterator[tuple[pa.Table, Any]]:
        """The batches (`size` rows each), their CSV written in a thread a chunk at a time,
        ahead of the COPY that sends it (Arrow writes without the GIL): the server parses a
        chunk while the next one is written, and the next batch is written while this one
        merges."""
        if runs.num_rows <= CSV_CHUNK:  # a month of one athlete: nothing to overlap
            yield from super()._batches(runs, size)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="runs-csv") as pool:

            def ahead(batch: pa.Table) -> list[Future[pa.Buffer]]:
                starts = range(0, batch.num_rows, CSV_CHUNK)
                return [pool.submit(self._csv, batch.slice(s, CSV_CHUNK)) for s in starts]

            batches = [runs.slice(s, size) for s in range(0, runs.num_rows, size)]
            pending = ahead(batches[0])
            for i, batch in enumerate(batches):
                chunks = pending
                if i + 1 < len(batches):
                    pending = ahead(batches[i + 1])  # queued behind this batch's chunks
                yield batch, chunks

    @staticmethod
    def _copy(conn: psycopg.Connection, chunks: Sequence[Future[pa.Buffer]]) -> None:
        with conn.cursor() as cur, cur.copy(Q("copy_runs_stage")) as copy:
            for chunk in chunks:
                copy.write(memoryview(chunk.result()))  # psycopg sends 128 KiB messages

    def _merge(self, conn: psycopg.Connection) -> tuple[int, int]:
        flags = [r[0] for r in conn.execute(Q("merge_runs")).fetchall()]
        inserted = sum(1 for f in flags if f)
        return inserted, len(flags) - inserted

    def _store_batch(
        self, runs: pa.Table, encoded: Sequence[Future[pa.Buffer]]
    ) -> tuple[StoreResult, list[QuarantineRecord]]:
        result, refused = StoreResult(), []
        with self._tx() as conn:
            self._refuse_deauthorized(conn, pc.unique(runs.column("user_id")).to_pylist())
            conn.execute(Q("stage_runs"))
            try:
                with conn.transaction():  # savepoint: a refused row must not end the batch
                    self._copy(conn, encoded)
                    if self.before_merge:
                        self.before_merge(conn)
                    inserted, updated = self._merge(conn)
                result.saved, result.updated = inserted, updated
                result.skipped = runs.num_rows - inserted - updated
                return result, refused
            except (psycopg.DataError, psycopg.IntegrityError):
                pass  # somewhere in the batch is a row the database refuses: find it
            for i in range(runs.num_rows):
                row = runs.slice(i, 1)
                try:
                    with conn.transaction():
                        conn.execute(Q("truncate_stage"))
                        self._copy(conn, self._encode(row))
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
                            user_id=row.column("user_id")[0].as_py(),
                            strava_id=row.column("strava_id")[0].as_py(),
                            reason=reason,
                            payload=row.column("strava_data")[0].as_py() or "",
                            source="store",
                        )
                    )
        return result, refused

    # -- Strava webhooks: a batch in one statement ---------------------------------------------
    def record_webhook_events(self, events: list[dict[str, Any]]) -> list[int | None]:
        if not events:
            return []
        # One statement, one round trip: `updates` goes as text, parsed as the one-row path does.
        batch = Jsonb([{**e, "updates": json.dumps(e["updates"])} for e in events])
        with self._tx() as conn:
            rows = conn.execute(Q("record_webhook_events"), {"events": batch}).fetchall()
        return [r[0] for r in rows]

    # -- weather cache (one row per provider, cell and UTC day) -------------------------------
    def weather_lookup(
        self, provider: str, keys: Collection[HourKey]
    ) -> dict[HourKey, HourlyWeather]:
        found: dict[HourKey, HourlyWeather] = {}
        slots = [(k[0], slot) for k in keys if (slot := day_and_hour(k[1])) is not None]
        for start in range(0, len(slots), self.batch_size * 4):
            chunk = slots[start : start + self.batch_size * 4]
            params = {
                "provider": provider,
                "lats": [cell[0] for cell, _ in chunk],
                "lngs": [cell[1] for cell, _ in chunk],
                "days": [day for _, (day, _) in chunk],
                "hours": [hour for _, (_, hour) in chunk],
            }
            with self._tx() as conn, conn.cursor(row_factory=dict_row) as cur:
                for r in cur.execute(Q("weather_lookup"), params):
                    cell = (round(r.pop("cell_lat"), 2), round(r.pop("cell_lng"), 2))
                    hour = hour_at(r.pop("day_utc"), r.pop("hour"))
                    found[(cell, hour)] = HourlyWeather(**r)
        return found

    @contextmanager
    def weather_lock(self, provider: str, cells: Collection[Cell]) -> Iterator[None]:
        """Hold these cells for this process until the block ends (see weather_lock.sql)."""
        keys = [f"weather:{provider}:{lat:.2f}:{lng:.2f}" for lat, lng in sorted(set(cells))]
        held = locks_held(
            self._tx, lambda conn: [conn.execute(Q("weather_lock"), {"key": k}) for k in keys]
        )
        with held(self._retry_on, "weather_lock"):
            yield

    def weather_store(self, provider: str, days: Mapping[DayKey, DayWeather]) -> int:
        """One statement per batch of days (see weather_store.sql); returns the rows written."""
        items = list(cache_rows(days).items())
        written = 0
        for start in range(0, len(items), self.batch_size):
            rows = [
                {
                    "lat": cell[0],
                    "lng": cell[1],
                    "day": day_utc.isoformat(),
                    "present": day.present,
                    **{param: day.values[name] for param, name in WEATHER_PARAMS.items()},
                }
                for (cell, day_utc), day in items[start : start + self.batch_size]
            ]
            params = {"provider": provider, "days": Json(rows)}
            for attempt in self._retrying():
                with attempt, self._tx() as conn:
                    count = conn.execute(Q("weather_store"), params).rowcount
            written += count
        return written
