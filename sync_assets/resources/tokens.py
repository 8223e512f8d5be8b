"""Where each user's Strava tokens live, and the one safe way to change them.

Strava may rotate the refresh token on every refresh and the old one then stops working, so a
refreshed token pair must be committed *before* the new access token is used, and two workers
must never refresh the same user at once (the loser's refresh token would already be dead).
`TokenStore.update_tokens` does both: it runs the refresh under a per-user lock and commits its
result before returning. The embedded default is SQLite; the database-backed store with
encryption at rest comes with the Supabase storage.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, SecretStr

from sync_assets.errors import AuthenticationError
from sync_assets.migrations import migrate_sqlite


class StravaTokens(BaseModel):
    """An access/refresh token pair; `SecretStr` keeps them out of reprs and logs."""

    access_token: SecretStr
    refresh_token: SecretStr
    expires_at: int  # epoch seconds, Strava's clock

    def expires_within(self, seconds: float, now: float) -> bool:
        return self.expires_at - seconds <= now


@dataclass(frozen=True)
class StravaConnection:
    user_id: str
    athlete_id: int | None
    scopes: str | None
    status: str
    status_reason: str | None
    tokens: StravaTokens


class TokenStore(Protocol):
    def save_connection(
        self,
        user_id: str,
        tokens: StravaTokens,
        *,
        athlete_id: int | None = None,
        scopes: str | None = None,
    ) -> None: ...

    def get(self, user_id: str) -> StravaConnection: ...

    def update_tokens(
        self, user_id: str, update: Callable[[StravaTokens], StravaTokens]
    ) -> StravaTokens: ...

    def mark_revoked(self, user_id: str, reason: str) -> None: ...

    def list_connections(self, status: str | None = "active") -> list[StravaConnection]: ...


class SqliteTokenStore:
    """The embedded default: one SQLite file, safe across threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as conn:
            migrate_sqlite(conn)
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)  # it holds tokens

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=60000")
        conn.row_factory = sqlite3.Row
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def save_connection(
        self,
        user_id: str,
        tokens: StravaTokens,
        *,
        athlete_id: int | None = None,
        scopes: str | None = None,
    ) -> None:
        self._conn().execute(
            """
            INSERT INTO strava_connections
                (user_id, athlete_id, scopes, access_token, refresh_token, expires_at, status)
            VALUES (?, ?, ?, ?, ?, ?, 'active')
            ON CONFLICT (user_id) DO UPDATE SET
                athlete_id = COALESCE(excluded.athlete_id, strava_connections.athlete_id),
                scopes = COALESCE(excluded.scopes, strava_connections.scopes),
                access_token = excluded.access_token,
                refresh_token = excluded.refresh_token,
                expires_at = excluded.expires_at,
                status = 'active', status_reason = NULL,
                updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
            """,
            (
                user_id,
                athlete_id,
                scopes,
                tokens.access_token.get_secret_value(),
                tokens.refresh_token.get_secret_value(),
                tokens.expires_at,
            ),
        )

    @staticmethod
    def _row(row: sqlite3.Row) -> StravaConnection:
        return StravaConnection(
            user_id=row["user_id"],
            athlete_id=row["athlete_id"],
            scopes=row["scopes"],
            status=row["status"],
            status_reason=row["status_reason"],
            tokens=StravaTokens(
                access_token=row["access_token"],
                refresh_token=row["refresh_token"],
                expires_at=row["expires_at"],
            ),
        )

    def get(self, user_id: str) -> StravaConnection:
        row = (
            self._conn()
            .execute("SELECT * FROM strava_connections WHERE user_id = ?", (user_id,))
            .fetchone()
        )
        if row is None:
            raise AuthenticationError(
                f"user {user_id} has no Strava connection: run `sync-assets connect`"
            )
        conn = self._row(row)
        if conn.status != "active":
            raise AuthenticationError(
                f"the Strava connection of user {user_id} is {conn.status}"
                f" ({conn.status_reason or 'no reason recorded'}): the athlete must reconnect"
            )
        return conn

    def update_tokens(
        self, user_id: str, update: Callable[[StravaTokens], StravaTokens]
    ) -> StravaTokens:
        conn = self._conn()
        # BEGIN IMMEDIATE takes the write lock first: concurrent refreshers queue up here and
        # then see the tokens the winner committed.
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = self.get(user_id).tokens
            new = update(current)
            if new != current:
                conn.execute(
                    "UPDATE strava_connections SET access_token = ?, refresh_token = ?, "
                    "expires_at = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                    "WHERE user_id = ?",
                    (
                        new.access_token.get_secret_value(),
                        new.refresh_token.get_secret_value(),
                        new.expires_at,
                        user_id,
                    ),
                )
            conn.execute("COMMIT")
            return new
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def mark_revoked(self, user_id: str, reason: str) -> None:
        self._conn().execute(
            "UPDATE strava_connections SET status = 'revoked', status_reason = ?, "
            "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE user_id = ?",
            (reason, user_id),
        )

    def list_connections(self, status: str | None = "active") -> list[StravaConnection]:
        if status is None:
            rows = self._conn().execute("SELECT * FROM strava_connections ORDER BY user_id")
        else:
            rows = self._conn().execute(
                "SELECT * FROM strava_connections WHERE status = ? ORDER BY user_id", (status,)
            )
        return [self._row(r) for r in rows]
