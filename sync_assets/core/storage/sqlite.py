"""The embedded default: one SQLite file with the same tables and behaviour as PostgreSQL.

The operations are `SqlStore`'s; this class brings the connections, SQLite's locking and its
runs upsert (one executemany per batch; row by row only to find a row the database refuses).
No server to set up, safe across threads and processes (WAL, busy timeout, `BEGIN IMMEDIATE`
before every write: the token refresh lock among them). There is no RLS: it serves the one
person on this machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sync_assets.core.clients.weather import (
    WEATHER_FIELDS,
    Cell,
    DayKey,
    DayWeather,
    HourKey,
    HourlyWeather,
    cache_rows,
    day_and_hour,
)
from sync_assets.core.migrations import migrate_sqlite
from sync_assets.core.storage.base import (
    RUNS_COLUMNS,
    QuarantineRecord,
    StoreResult,
)
from sync_assets.core.storage.crypto import TokenCipher
from sync_assets.core.storage.dialect import SQLITE
from sync_assets.core.storage.sqlstore import BATCH_SIZE, SqlStore

_WEATHER_LOCK = threading.RLock()


def Q(name: str) -> str:  # noqa: N802 - reads like a constant
    return SQLITE.sql(name)


_iso = SQLITE.when
_USER, _STRAVA_ID, _STRAVA_DATA = (
    RUNS_COLUMNS.index(c) for c in ("user_id", "strava_id", "strava_data")
)


class SqliteStore(SqlStore):
    dialect = SQLITE

    def __init__(
        self, path: str | Path, cipher: TokenCipher, *, batch_size: int = BATCH_SIZE
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cipher = cipher
        self.batch_size = batch_size
        self._local = threading.local()
        self.migrate()
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)  # it holds (encrypted) tokens and the athletes' data

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=60000")
        conn.row_factory = sqlite3.Row
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextlib.contextmanager
    def _tx(self, mode: str = "DEFERRED") -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute(f"BEGIN {mode}")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        yield self._conn()  # autocommit: each statement sees the last committed state

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._tx("IMMEDIATE")

    def _dicts(self, conn: Any, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return [dict(r) for r in conn.execute(sql, params)]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def migrate(self) -> list[str]:
        with contextlib.closing(self._connect()) as conn:
            return migrate_sqlite(conn)

    # -- runs: one executemany per batch, in one transaction ----------------------------------
    def _encode(self, runs: pa.Table) -> list[tuple[Any, ...]]:
        """upsert_run.sql's parameters of each row (RUNS_COLUMNS in order), converted column by
        column: times as SQLite keeps them (ISO 8601 UTC text, to the second, `SQLITE.when`)."""
        columns = []
        for f in runs.schema:
            values = runs.column(f.name)
            if pa.types.is_timestamp(f.type):
                values = pc.strftime(values, format="%Y-%m-%dT%H:%M:%SZ")
            columns.append(values.to_pylist())
        return list(zip(*columns, strict=True))

    def _store_batch(
        self, runs: pa.Table, encoded: list[tuple[Any, ...]]
    ) -> tuple[StoreResult, list[QuarantineRecord]]:
        result, refused = StoreResult(), []
        rows = encoded
        by_user: dict[str, list[int]] = {}
        for row in rows:
            by_user.setdefault(row[_USER], []).append(row[_STRAVA_ID])
        with self._tx("IMMEDIATE") as conn:
            self._refuse_deauthorized(conn, by_user)
            existing = {
                (user, r[0])
                for user, ids in by_user.items()
                for r in conn.execute(Q("existing_run_ids"), (user, json.dumps(ids)))
            }
            deleted = {  # tombstones: deleted on Strava, never stored again
                (user, r[0])
                for user, ids in by_user.items()
                for r in conn.execute(Q("deleted_run_ids"), (user, json.dumps(ids)))
            }
            live = [r for r in rows if (r[_USER], r[_STRAVA_ID]) not in deleted]
            result.skipped = len(rows) - len(live)
            conn.execute("SAVEPOINT run_batch")
            try:
                changed = conn.executemany(Q("upsert_run"), live).rowcount
            except sqlite3.IntegrityError:
                changed = None  # somewhere in the batch is a row the database refuses
                conn.execute("ROLLBACK TO run_batch")
            conn.execute("RELEASE run_batch")
            if changed is not None:
                # A row changes once when inserted or updated, not at all when identical.
                result.saved = len({(r[_USER], r[_STRAVA_ID]) for r in live} - existing)
                result.updated = changed - result.saved
                result.skipped += len(live) - changed
                return result, refused
            for row in live:
                key = (row[_USER], row[_STRAVA_ID])
                conn.execute("SAVEPOINT run_row")
                try:
                    changed = conn.execute(Q("upsert_run"), row).rowcount
                except sqlite3.IntegrityError as exc:
                    conn.execute("ROLLBACK TO run_row")
                    conn.execute("RELEASE run_row")
                    reason = f"database refused the row: {exc}"
                    result.failed += 1
                    result.errors.append(reason)
                    refused.append(QuarantineRecord(*key, reason, row[_STRAVA_DATA] or "", "store"))
                    continue
                conn.execute("RELEASE run_row")
                if key not in existing:
                    result.saved += 1
                    existing.add(key)
                elif changed:
                    result.updated += 1
                else:
                    result.skipped += 1
        return result, refused

    # -- weather cache (one row per provider, cell and UTC day) ------------------------------
    def _weather_days(
        self, conn: sqlite3.Connection, provider: str, keys: Iterable[DayKey]
    ) -> dict[DayKey, DayWeather]:
        """The cached days of these keys, in one query (the keys staged in a temp table)."""
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS weather_days "
            "(cell_lat REAL, cell_lng REAL, day_utc TEXT)"
        )
        conn.execute("DELETE FROM temp.weather_days")
        conn.executemany(
            "INSERT INTO temp.weather_days VALUES (?, ?, ?)",
            [(cell[0], cell[1], day.isoformat()) for cell, day in keys],
        )
        out: dict[DayKey, DayWeather] = {}
        for r in conn.execute(Q("weather_lookup"), {"provider": provider}):
            values = {name: r[name] for name in WEATHER_FIELDS}
            day = DayWeather.of(
                r["hours_present"],
                {name: None if v is None else json.loads(v) for name, v in values.items()},
            )
            cell = (round(r["cell_lat"], 2), round(r["cell_lng"], 2))
            out[(cell, date.fromisoformat(r["day_utc"]))] = day
        return out

    def weather_lookup(
        self, provider: str, keys: Collection[HourKey]
    ) -> dict[HourKey, HourlyWeather]:
        slots: dict[DayKey, list[tuple[int, HourKey]]] = {}
        for key in keys:
            slot = day_and_hour(key[1])
            if slot is not None:
                cell = (round(key[0][0], 2), round(key[0][1], 2))
                slots.setdefault((cell, slot[0]), []).append((slot[1], key))
        if not slots:
            return {}
        with self._tx() as conn:
            days = self._weather_days(conn, provider, slots)
        found: dict[HourKey, HourlyWeather] = {}
        for day_key, day in days.items():
            for hour, key in slots[day_key]:
                weather = day.hour(hour)
                if weather is not None:
                    found[(day_key[0], key[1])] = weather
        return found

    @contextlib.contextmanager
    def weather_lock(self, provider: str, cells: Collection[Cell]) -> Iterator[None]:
        """One fetch at a time in this process (the embedded default serves one machine)."""
        with _WEATHER_LOCK:
            yield

    def weather_store(self, provider: str, days: Mapping[DayKey, DayWeather]) -> int:
        """Merged with the cached days in Python, inside one IMMEDIATE transaction (no other
        writer in between); a day that gains no hour is not written. Returns rows written."""
        fresh = cache_rows(days)
        if not fresh:
            return 0
        with self._tx("IMMEDIATE") as conn:
            cached = self._weather_days(conn, provider, fresh)
            params = []
            for (cell, day_utc), day in fresh.items():
                old = cached.get((cell, day_utc))
                if old is not None:
                    if not day.present & ~old.present:
                        continue
                    day = old.filled_from(day)
                params.append(
                    {
                        "provider": provider,
                        "cell_lat": cell[0],
                        "cell_lng": cell[1],
                        "day_utc": day_utc.isoformat(),
                        "hours_present": day.present,
                        **{
                            name: None if col is None else json.dumps(col)
                            for name, col in day.values.items()
                        },
                    }
                )
            conn.executemany(Q("weather_store"), params)
        return len(params)
