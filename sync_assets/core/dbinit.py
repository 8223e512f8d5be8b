"""Reaching the database, and making a plain PostgreSQL ready for the Supabase migrations.

Supabase is the main target: its `auth.users`, roles and Realtime publication are used as they
are. A plain PostgreSQL has none of them, so `sync-assets db init --plain-postgres` creates
the minimal compatible pieces (`migrations/plain_postgres/supabase_compat.sql`) before the
migrations, which then apply exactly as on Supabase. Every failure here is one line that
names host, port and database, never the password.
"""

from __future__ import annotations

import psycopg
from psycopg import conninfo

from sync_assets.core.errors import ErrorType, SyncError
from sync_assets.core.migrations import migrate_postgres, plain_postgres_compat_sql

CONNECT_TIMEOUT_SECONDS = 5  # per address tried: a dead host fails well inside 10 s


def describe(database_url: str) -> str:
    """`host:port/database` of a URL or conninfo string, without user or password."""
    try:
        parts = conninfo.conninfo_to_dict(database_url)
    except psycopg.ProgrammingError:
        return "an unparsable DATABASE_URL"
    host = parts.get("host") or "localhost"
    return f"{host}:{parts.get('port') or 5432}/{parts.get('dbname') or parts.get('user') or '?'}"


def _reason(exc: psycopg.Error, database_url: str) -> str:
    """psycopg's message, one line, with anything secret of the URL taken out."""
    text = " ".join(str(exc).split())
    try:
        secret = conninfo.conninfo_to_dict(database_url).get("password")
    except psycopg.ProgrammingError:
        secret = None
    if secret:
        text = text.replace(str(secret), "***")
    return text[:300]


def connect(database_url: str, **kwargs: object) -> psycopg.Connection:
    """A connection, or a retryable DATABASE error saying where it could not go and why.
    No server-side prepared statements, as the store's (`database_url` may be a pooler's)."""
    kwargs.setdefault("prepare_threshold", None)
    try:
        return psycopg.connect(database_url, connect_timeout=CONNECT_TIMEOUT_SECONDS, **kwargs)
    except psycopg.OperationalError as exc:
        raise SyncError(
            ErrorType.DATABASE,
            f"cannot reach PostgreSQL at {describe(database_url)}: {_reason(exc, database_url)}",
            retryable=True,
        ) from None
    except psycopg.ProgrammingError:
        raise SyncError(
            ErrorType.CONFIGURATION,
            "DATABASE_URL is not a PostgreSQL URL (postgresql://user@host:5432/database)",
            retryable=False,
        ) from None


def check_reachable(database_url: str) -> None:
    """Fail fast (one line, within 10 s) on a database that is down or does not exist."""
    connect(database_url).close()


def has_supabase_basics(conn: psycopg.Connection) -> bool:
    """Does the database have what the migrations take from Supabase (auth.users, roles)?"""
    row = conn.execute(
        "select to_regclass('auth.users') is not null"
        " and exists (select 1 from pg_roles where rolname = 'authenticated')"
    ).fetchone()
    return bool(row and row[0])


def is_supabase(conn: psycopg.Connection) -> bool:
    """Supabase Auth's own tables are there (not only our compatible `auth.users`)."""
    row = conn.execute("select to_regclass('auth.identities') is not null").fetchone()
    return bool(row and row[0])


def missing_supabase_basics(database_url: str) -> SyncError:
    return SyncError(
        ErrorType.CONFIGURATION,
        f"the database {describe(database_url)} has no Supabase auth schema (auth.users, "
        "roles): on plain PostgreSQL run `sync-assets db init --plain-postgres` once",
        retryable=False,
    )


def init_database(database_url: str, *, plain_postgres: bool) -> list[str]:
    """Apply the migrations (after the Supabase-compatible pieces, on plain PostgreSQL);
    returns the migrations applied now. Idempotent."""
    with connect(database_url, autocommit=True) as conn:
        if plain_postgres:
            if is_supabase(conn):
                raise SyncError(
                    ErrorType.CONFIGURATION,
                    f"{describe(database_url)} is a Supabase database: it has its own auth "
                    "schema; run `sync-assets db init` without --plain-postgres",
                    retryable=False,
                )
            conn.execute(plain_postgres_compat_sql())
        elif not has_supabase_basics(conn):
            raise missing_supabase_basics(database_url)
        conn.autocommit = False
        return migrate_postgres(conn)


def auth_user_problem(database_url: str, user_id: str, *, create: bool = False) -> str | None:
    """Why `user_id` cannot be connected (None when it can): Strava connections belong to a
    row of `auth.users`. With `create`, a missing user is added, on plain PostgreSQL only."""
    with connect(database_url, autocommit=True) as conn:
        if not has_supabase_basics(conn):
            return missing_supabase_basics(database_url).message
        found = conn.execute("select 1 from auth.users where id = %s", (user_id,)).fetchone()
        if found:
            return None
        if is_supabase(conn):
            return (
                f"user {user_id} is not in auth.users of {describe(database_url)}: on Supabase "
                "the user signs up in the app (Supabase Auth) before connecting Strava"
            )
        if create:
            conn.execute(
                "insert into auth.users (id) values (%s) on conflict do nothing", (user_id,)
            )
            return None
        return (
            f"user {user_id} is not in auth.users of {describe(database_url)}: add it with "
            "`sync-assets connect ... --create-auth-user` (plain PostgreSQL), or insert it "
            "into auth.users yourself"
        )
