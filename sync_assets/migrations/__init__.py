"""SQL migrations, applied in file-name order and recorded in `schema_migrations`."""

from __future__ import annotations

import sqlite3
from importlib import resources

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
