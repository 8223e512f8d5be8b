"""What a test's PostgreSQL database is given: Supabase's pieces, and users in `auth.users`.

The throwaway databases themselves come from `tests/pg.py` (`temporary_database`)."""

from __future__ import annotations

import psycopg

from sync_assets.core.migrations import plain_postgres_compat_sql

# What `sync-assets db init --plain-postgres` adds to a plain PostgreSQL (Supabase's auth schema,
# roles and publication, reduced): the test databases are plain PostgreSQL too.
BOOTSTRAP = plain_postgres_compat_sql()


def add_users(url: str, *ids: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for uid in ids:
            conn.execute("insert into auth.users (id) values (%s) on conflict do nothing", (uid,))
