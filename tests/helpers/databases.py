"""What a test's database is given: Supabase's pieces, users in `auth.users`, or only the
migrations of an older release (to test the migrations after it).

The throwaway PostgreSQL databases themselves come from `tests/pg.py` (`temporary_database`)."""

from __future__ import annotations

import sqlite3

import psycopg

from sync_assets.core.migrations import (
    BOOTSTRAP as SQLITE_BOOTSTRAP,
)
from sync_assets.core.migrations import (
    plain_postgres_compat_sql,
    postgres_migrations,
    sqlite_migrations,
)

# What `sync-assets db init --plain-postgres` adds to a plain PostgreSQL (Supabase's auth schema,
# roles and publication, reduced): the test databases are plain PostgreSQL too.
BOOTSTRAP = plain_postgres_compat_sql()


def add_users(url: str, *ids: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for uid in ids:
            conn.execute("insert into auth.users (id) values (%s) on conflict do nothing", (uid,))


def migrate_postgres_until(conn: psycopg.Connection, last: str) -> None:
    """The migrations up to version `last`, bookkept as our runner and the Supabase CLI do: a
    database of an older release, for a test of the migrations after it."""
    conn.execute(
        "create schema if not exists supabase_migrations; create table if not exists "
        "supabase_migrations.schema_migrations (version text primary key, statements text[],"
        " name text)"
    )
    for filename, text in postgres_migrations():
        version, _, name = filename.removesuffix(".sql").partition("_")
        if version > last:
            break
        with conn.transaction():
            conn.execute(text)
            conn.execute(
                "insert into supabase_migrations.schema_migrations values (%s, %s, %s)",
                (version, [text], name),
            )


def migrate_sqlite_until(conn: sqlite3.Connection, last: str) -> None:
    """The SQLite migrations up to the file `last`, bookkept as `migrate_sqlite` does."""
    migrations = sqlite_migrations()
    conn.executescript(dict(migrations)[SQLITE_BOOTSTRAP])
    for name, sql in migrations:
        if name == SQLITE_BOOTSTRAP or name > last:
            continue
        conn.executescript(
            f"BEGIN;\n{sql}\nINSERT INTO schema_migrations (name) VALUES ('{name}');\nCOMMIT;"
        )
