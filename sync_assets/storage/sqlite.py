"""The embedded default: one SQLite file with the same tables and behaviour as PostgreSQL.

No server to set up, safe across threads and processes (WAL, busy timeout, `BEGIN IMMEDIATE`
for the token refresh lock). There is no RLS: it serves the one person on this machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sync_assets.errors import ErrorType, SyncError
from sync_assets.migrations import migrate_sqlite
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

BATCH_SIZE = 5_000
_WEATHER_LOCK = threading.RLock()


def Q(name: str) -> str:  # noqa: N802 - reads like a constant
    return statement("sqlite", name)


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.strftime("%Y-%m-%dT%H:%M:%S")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _iso_ms(value: datetime) -> str:
    """The form SQLite's own `strftime('%Y-%m-%dT%H:%M:%fZ')` defaults write, to compare."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _dt(value: Any) -> datetime | None:
    if value is None:
        return None
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class SqliteStore(ClosedOnExit):
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

    def connection_usage(self) -> dict[str, int] | None:
        return None  # a file, not a server: no connection limit to reach

    def take_pool_stats(self) -> dict[str, int] | None:
        return None  # one connection per thread: there is no pool to exhaust

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def migrate(self) -> list[str]:
        with contextlib.closing(self._connect()) as conn:
            return migrate_sqlite(conn)

    # -- connections ----------------------------------------------------------------------
    def _connection(self, row: sqlite3.Row) -> StravaConnection:
        return StravaConnection(
            user_id=row["user_id"],
            athlete_id=row["athlete_id"],
            scopes=row["scopes"],
            status=row["status"],
            status_reason=row["status_reason"],
            tokens=StravaTokens(
                access_token=self._cipher.decrypt(row["access_token_encrypted"]),
                refresh_token=self._cipher.decrypt(row["refresh_token_encrypted"]),
                expires_at=row["expires_at"],
            ),
        )

    def _active(self, user_id: str, row: sqlite3.Row | None) -> StravaConnection:
        return require_active(user_id, self._connection(row) if row is not None else None)

    def save_connection(
        self,
        user_id: str,
        tokens: StravaTokens,
        *,
        athlete_id: int | None = None,
        scopes: str | None = None,
    ) -> None:
        with self._tx("IMMEDIATE") as conn:
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

    def get(self, user_id: str) -> StravaConnection:
        row = self._conn().execute(Q("get_connection"), {"user_id": user_id}).fetchone()
        return self._active(user_id, row)

    def update_tokens(
        self, user_id: str, update: Callable[[StravaTokens], StravaTokens]
    ) -> StravaTokens:
        # BEGIN IMMEDIATE takes the write lock first: concurrent refreshers queue up here and
        # then see the tokens the winner committed.
        with self._tx("IMMEDIATE") as conn:
            row = conn.execute(Q("get_connection"), {"user_id": user_id}).fetchone()
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
        return new

    def mark_revoked(self, user_id: str, reason: str) -> None:
        with self._tx("IMMEDIATE") as conn:
            conn.execute(Q("mark_revoked"), {"user_id": user_id, "reason": reason[:500]})

    def active_users(
        self, since: datetime, after_user: str = "", limit: int = 1000
    ) -> list[tuple[str, datetime]]:
        params = {"since": _iso_ms(since), "after_user": after_user, "limit": limit}
        rows = self._conn().execute(Q("active_users"), params)
        return [(r[0], _dt(r[1])) for r in rows]

    def list_connections(self, status: str | None = "active") -> list[StravaConnection]:
        rows = self._conn().execute(Q("list_connections"), {"status": status}).fetchall()
        return [self._connection(r) for r in rows]

    def rotate_keys(self) -> int:
        with self._tx("IMMEDIATE") as conn:
            rows = conn.execute(Q("all_tokens")).fetchall()
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
    def _params(row: dict[str, Any]) -> dict[str, Any]:
        params = {c: _iso(row[c]) for c in RUNS_COLUMNS}
        params["id"] = str(uuid.uuid4())
        return params

    def _store_batch(
        self, rows: Sequence[dict[str, Any]]
    ) -> tuple[StoreResult, list[QuarantineRecord]]:
        result, refused = StoreResult(), []
        by_user: dict[str, list[int]] = {}
        for row in rows:
            by_user.setdefault(row["user_id"], []).append(row["strava_id"])
        with self._tx("IMMEDIATE") as conn:
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
            for row in rows:
                if (row["user_id"], row["strava_id"]) in deleted:
                    result.skipped += 1
                    continue
                conn.execute("SAVEPOINT run_row")
                try:
                    changed = conn.execute(Q("upsert_run"), self._params(row)).rowcount
                except sqlite3.IntegrityError as exc:
                    conn.execute("ROLLBACK TO run_row")
                    reason = f"database refused the row: {exc}"
                    result.failed += 1
                    result.errors.append(reason)
                    refused.append(
                        QuarantineRecord(
                            row["user_id"],
                            row["strava_id"],
                            reason,
                            row["strava_data"] or "",
                            "store",
                        )
                    )
                    conn.execute("RELEASE run_row")
                    continue
                conn.execute("RELEASE run_row")
                if (row["user_id"], row["strava_id"]) not in existing:
                    result.saved += 1
                    existing.add((row["user_id"], row["strava_id"]))
                elif changed:
                    result.updated += 1
                else:
                    result.skipped += 1
        return result, refused

    def upsert_runs(
        self, rows: Sequence[dict[str, Any]], session_id: str | None = None
    ) -> StoreResult:
        total, refused = StoreResult(), []
        if session_id is not None:
            rows = [{**row, "sync_session_id": session_id} for row in rows]
        started = time.perf_counter()
        for i in range(0, len(rows), self.batch_size):
            result, batch_refused = self._store_batch(rows[i : i + self.batch_size])
            total.add(result)
            refused.extend(batch_refused)
        if refused:
            self.quarantine(refused)
        total.seconds = time.perf_counter() - started
        return total

    def quarantine(self, records: Sequence[QuarantineRecord], session_id: str | None = None) -> int:
        if not records:
            return 0
        with self._tx("IMMEDIATE") as conn:
            conn.executemany(
                Q("insert_quarantine"),
                [
                    {
                        "user_id": r.user_id,
                        "strava_id": r.strava_id,
                        "reason": r.reason,
                        "payload": r.payload,
                        "source": r.source,
                        "session_id": session_id,
                    }
                    for r in records
                ],
            )
        return len(records)

    def run_ids(self, user_id: str) -> list[int]:
        return [r[0] for r in self._conn().execute(Q("run_ids"), {"user_id": user_id})]

    def unstored_ids(self, user_id: str, ids: Sequence[int]) -> list[int]:
        params = {"user_id": user_id, "ids": json.dumps(list(ids))}
        return [r[0] for r in self._conn().execute(Q("unstored_ids"), params)]

    def pending_enrichment(self, now: datetime) -> list[tuple[str, datetime, int]]:
        rows = self._conn().execute(Q("pending_enrichment"), {"now": _iso(now)})
        return [(r[0], _dt(r[1]), r[2]) for r in rows]

    # -- Strava webhooks -------------------------------------------------------------------
    def record_webhook_event(self, event: dict[str, Any]) -> int | None:
        with self._tx("IMMEDIATE") as conn:
            row = conn.execute(
                Q("record_webhook_event"), {**event, "updates": json.dumps(event["updates"])}
            ).fetchone()
            return row[0] if row else None

    def record_webhook_events(self, events: list[dict[str, Any]]) -> list[int | None]:
        # In-process statements are cheap; the one COMMIT (the fsync) is what a batch saves.
        ids: list[int | None] = []
        with self._tx("IMMEDIATE") as conn:
            for event in events:
                row = conn.execute(
                    Q("record_webhook_event"), {**event, "updates": json.dumps(event["updates"])}
                ).fetchone()
                ids.append(row[0] if row else None)
        return ids

    def webhook_events_after(self, after: int, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self._conn().execute(Q("webhook_events_after"), {"after": after, "limit": limit})
        return [{**dict(r), "updates": json.loads(r["updates"])} for r in rows.fetchall()]

    def users_with_news(self) -> set[str]:
        return {r[0] for r in self._conn().execute(Q("users_with_news"))}

    def run_start(self, user_id: str, strava_id: int) -> datetime | None:
        row = (
            self._conn()
            .execute(Q("run_start"), {"user_id": user_id, "strava_id": strava_id})
            .fetchone()
        )
        return _dt(row[0]) if row else None

    def delete_run(self, user_id: str, strava_id: int) -> int:
        params = {"user_id": user_id, "strava_id": strava_id}
        with self._tx("IMMEDIATE") as conn:
            tombstone, delete = Q("delete_run").split(";\n")
            conn.execute(tombstone, params)
            return conn.execute(delete, params).rowcount

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
            "window_start": _iso(window_start),
            "window_end": _iso(window_end),
            "listed": json.dumps(list(listed)),
            "listed_at": _iso_ms(listed_at),
        }
        with self._tx("IMMEDIATE") as conn:
            return conn.execute(Q("delete_unlisted_runs"), params).rowcount

    def delete_user_data(self, user_id: str, reason: str) -> None:
        params = {"user_id": user_id, "reason": reason[:500], "blank": self._cipher.encrypt("")}
        with self._tx("IMMEDIATE") as conn:
            for stmt in Q("delete_user_data").split(";\n"):
                if stmt.strip():
                    conn.execute(stmt, params)

    # -- the app-wide Strava budget ---------------------------------------------------------
    def budget_ensure(self, app: str) -> None:
        with self._tx("IMMEDIATE") as conn:
            conn.execute(Q("budget_ensure"), {"app": app})

    def budget_take(self, app: str, **window: Any) -> bool:
        with self._tx("IMMEDIATE") as conn:
            return conn.execute(Q("budget_take"), {"app": app, **window}).fetchone() is not None

    def budget_observe(self, app: str, **observed: Any) -> None:
        with self._tx("IMMEDIATE") as conn:
            conn.execute(Q("budget_observe"), {"app": app, **observed})

    def budget_state(self, app: str) -> dict[str, Any] | None:
        row = self._conn().execute(Q("budget_state"), {"app": app}).fetchone()
        return dict(row) if row else None

    # -- weather cache ----------------------------------------------------------------------
    def weather_lookup(
        self, provider: str, keys: Collection[HourKey]
    ) -> dict[HourKey, HourlyWeather]:
        with self._tx() as conn:
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS weather_keys "
                "(cell_lat REAL, cell_lng REAL, hour_utc TEXT)"
            )
            conn.execute("DELETE FROM temp.weather_keys")
            conn.executemany(
                "INSERT INTO temp.weather_keys VALUES (?, ?, ?)",
                [(k[0][0], k[0][1], _iso(k[1])) for k in keys],
            )
            rows = conn.execute(Q("weather_lookup"), {"provider": provider}).fetchall()
        found: dict[HourKey, HourlyWeather] = {}
        for r in rows:
            d = dict(r)
            cell = (round(d.pop("cell_lat"), 2), round(d.pop("cell_lng"), 2))
            hour = _dt(d.pop("hour_utc"))
            found[(cell, hour)] = HourlyWeather(**d)
        return found

    @contextlib.contextmanager
    def weather_lock(self, provider: str, cells: Collection[Cell]) -> Iterator[None]:
        """One fetch at a time in this process (the embedded default serves one machine)."""
        with _WEATHER_LOCK:
            yield

    def weather_store(self, provider: str, rows: Mapping[HourKey, HourlyWeather]) -> int:
        params = [
            {
                "provider": provider,
                "cell_lat": cell[0],
                "cell_lng": cell[1],
                "hour_utc": _iso(hour),
                **{name: getattr(w, name) for name in WEATHER_PARAMS.values()},
            }
            for (cell, hour), w in rows.items()
        ]
        with self._tx("IMMEDIATE") as conn:
            before = conn.total_changes
            conn.executemany(Q("weather_store"), params)
            return conn.total_changes - before

    # -- staging --------------------------------------------------------------------------
    def stage_page(
        self, user_id: str, span: str, page: int, cursor: ListCursor, records: str
    ) -> None:
        with self._tx("IMMEDIATE") as conn:
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
        rows = (
            self._conn()
            .execute(
                Q("staged_pages"),
                {"user_id": user_id, "span": span, "max_age_seconds": max_age_seconds},
            )
            .fetchall()
        )
        return [StagedPage.from_row(r) for r in rows]

    def clear_staging(self, user_id: str, span: str) -> None:
        with self._tx("IMMEDIATE") as conn:
            conn.execute(Q("clear_staging"), {"user_id": user_id, "span": span})

    # -- sessions -------------------------------------------------------------------------
    @staticmethod
    def _session(row: sqlite3.Row) -> SessionRecord:
        data = dict(row)
        for k in SESSION_JSON_FIELDS:
            data[k] = json.loads(data[k]) if data[k] is not None else None
        for k in (
            "time_range_start",
            "time_range_end",
            "started_at",
            "completed_at",
            "last_activity_at",
        ):
            data[k] = _dt(data[k])
        return SessionRecord.from_row(data)

    def create_session(
        self,
        *,
        run_id: str,
        user_id: str,
        sync_type: str,
        time_range_start: datetime | None,
        time_range_end: datetime | None,
    ) -> SessionRecord:
        with self._tx("IMMEDIATE") as conn:
            conn.execute(
                Q("create_session"),
                {
                    "id": str(uuid.uuid4()),
                    "run_id": run_id,
                    "user_id": user_id,
                    "sync_type": sync_type,
                    "time_range_start": _iso(time_range_start),
                    "time_range_end": _iso(time_range_end),
                },
            )
        session = self.get_session(run_id, user_id)
        assert session is not None
        return session

    def get_session(self, run_id: str, user_id: str) -> SessionRecord | None:
        row = (
            self._conn()
            .execute(Q("get_session"), {"run_id": run_id, "user_id": user_id})
            .fetchone()
        )
        return self._session(row) if row else None

    def run_sessions(self, run_id: str) -> list[SessionRecord]:
        return [
            self._session(r) for r in self._conn().execute(Q("run_sessions"), {"run_id": run_id})
        ]

    def update_session(self, run_id: str, user_id: str, **changes: Any) -> SessionRecord:
        unknown = set(changes) - SESSION_FIELDS
        if unknown:
            raise ValueError(f"not session fields: {sorted(unknown)}")
        values = {
            # Milliseconds, as the started_at default writes: durations stay exact.
            k: json.dumps(v)
            if k in SESSION_JSON_FIELDS and v is not None
            else _iso_ms(v)
            if isinstance(v, datetime) and v.tzinfo is not None
            else _iso(v)
            for k, v in changes.items()
        }
        assignments = ", ".join(f"{k} = :{k}" for k in values)  # names checked above
        with self._tx("IMMEDIATE") as conn:
            # A run over several users keeps one session per user: update this user's only.
            conn.execute(
                f"UPDATE sync_sessions SET {assignments} "
                "WHERE dagster_run_id = :_run AND user_id = :_user",
                {**values, "_run": run_id, "_user": user_id},
            )
        session = self.get_session(run_id, user_id)
        if session is None:
            raise SyncError(
                ErrorType.DATABASE, f"no sync session for run {run_id}", retryable=False
            )
        return session

    def open_sessions(self) -> list[SessionRecord]:
        return [self._session(r) for r in self._conn().execute(Q("open_sessions"))]

    def recent_sessions(self, user_id: str | None = None, limit: int = 20) -> list[SessionRecord]:
        params = {"user_id": user_id, "limit": limit}
        return [self._session(r) for r in self._conn().execute(Q("recent_sessions"), params)]

    # -- sync metrics ---------------------------------------------------------------------
    def record_step_metrics(self, metrics: StepMetrics) -> None:
        params = asdict(metrics)
        if metrics.recorded_at is not None:  # in the form of the column's default
            params["recorded_at"] = _iso_ms(metrics.recorded_at)
        with self._tx("IMMEDIATE") as conn:
            conn.execute(Q("record_step_metrics"), params)

    def step_metrics(
        self,
        *,
        since: datetime,
        api: str | None = None,
        step: str | None = None,
        sync_id: str | None = None,
    ) -> list[StepMetrics]:
        params = {"since": _iso_ms(since), "api": api, "step": step, "sync_id": sync_id}
        rows = self._conn().execute(Q("step_metrics"), params).fetchall()
        return [StepMetrics(**{**dict(r), "recorded_at": _dt(r["recorded_at"])}) for r in rows]

    def metrics_view(self, name: str) -> list[dict[str, Any]]:
        if name not in METRICS_VIEWS:
            raise ValueError(f"not a metrics view: {name!r} (one of {', '.join(METRICS_VIEWS)})")
        rows = [dict(r) for r in self._conn().execute(Q(f"metrics_{name}"))]
        for row in rows:  # 'YYYY-MM-DD' text here, a date in PostgreSQL
            if row.get("day") is not None:
                row["day"] = date.fromisoformat(row["day"])
        return rows
