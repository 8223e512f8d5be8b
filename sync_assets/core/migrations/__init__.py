"""SQL migrations, applied in file-name order and recorded in `schema_migrations`."""

from __future__ import annotations

import sqlite3
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

BOOTSTRAP = "0000_schema_migrations.sql"


def sqlite_migrations() -> list[tuple[str, str]]:
    folder = resources.files(__package__) / "sqlite"
    return sorted((f.name, f.read_text()) for f in folder.iterdir() if f.name.endswith(".sql"))


def migrate_sqlite(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations this database has not seen; return their names."""
    migrations = sqlite_migrations()
    conn.executescript(dict(migrations)[BOOTSTRAP])
    done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
    applied = []
    for name, sql in migrations:
        if name in done or name == BOOTSTRAP:
            continue
        conn.executescript(
            f"BEGIN;\n{sql}\nINSERT INTO schema_migrations (name) VALUES ('{name}');\nCOMMIT;"
        )
        applied.append(name)
    return applied


def plain_postgres_compat_sql() -> str:
    """The Supabase pieces our migrations rely on, for a plain PostgreSQL (idempotent)."""
    return (resources.files(__package__) / "plain_postgres" / "supabase_compat.sql").read_text()


def postgres_migrations() -> list[tuple[str, str]]:
    """supabase/migrations (shipped in the package as `migrations/postgres`)."""
    folder = resources.files(__package__) / "postgres"
    return sorted((f.name, f.read_text()) for f in folder.iterdir() if f.name.endswith(".sql"))


def migrate_postgres(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations, bookkept like the Supabase CLI does.

    Versions go to `supabase_migrations.schema_migrations`, the table `supabase db push` reads,
    so migrations applied by either tool are not applied twice by the other.
    """
    applied = []
    with conn.transaction():
        # The lock's key predates the core package: kept, so every version takes the same lock.
        conn.execute("select pg_advisory_xact_lock(hashtext('sync_assets.migrations'))")
        conn.execute(
            "create schema if not exists supabase_migrations; "
            "create table if not exists supabase_migrations.schema_migrations "
            "(version text primary key, statements text[], name text)"
        )
        done = {
            r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")
        }
        for filename, text in postgres_migrations():
            version, _, name = filename.removesuffix(".sql").partition("_")
            if version in done:
                continue
            conn.execute(text)
            conn.execute(
                "insert into supabase_migrations.schema_migrations (version, statements, name) "
                "values (%s, %s, %s)",
                (version, [text], name),
            )
            applied.append(filename)
    return applied
