"""Storage backends: PostgreSQL/Supabase in production, SQLite as the embedded default."""

from __future__ import annotations

import threading
from pathlib import Path

from sync_assets.storage.base import (
    METRICS_VIEWS,
    QuarantineRecord,
    SessionRecord,
    StepMetrics,
    Store,
    StoreResult,
    runs_rows,
)
from sync_assets.storage.crypto import EnvTokenCipher, local_cipher

_stores: dict[tuple[str, str], Store] = {}
_lock = threading.Lock()


def open_store(database_url: str | None, data_dir: str | Path) -> Store:
    """The store for this deployment, one per process and target (pools are shared)."""
    data_dir = Path(data_dir)
    key = (database_url or "", str(data_dir))
    with _lock:
        store = _stores.get(key)
        if store is None:
            if database_url:
                store = _open_postgres(database_url)
            else:
                from sync_assets.storage.sqlite import SqliteStore

                store = SqliteStore(
                    data_dir / "sync_assets.db", local_cipher(data_dir / "encryption.key")
                )
            _stores[key] = store
        return store


def _open_postgres(database_url: str) -> Store:
    """A migrated PostgreSQL store; a database that is down, missing or lacks Supabase's auth
    schema is one clear error (host, port and database named), not a pool time-out."""
    import psycopg

    from sync_assets import dbinit
    from sync_assets.storage.postgres import PostgresStore

    dbinit.check_reachable(database_url)
    store = PostgresStore(database_url, EnvTokenCipher())
    try:
        store.migrate()
    except (
        psycopg.errors.InvalidSchemaName,
        psycopg.errors.UndefinedTable,
        psycopg.errors.UndefinedObject,
        psycopg.errors.UndefinedFunction,
    ):
        store.close()
        with dbinit.connect(database_url) as conn:
            if not dbinit.has_supabase_basics(conn):
                raise dbinit.missing_supabase_basics(database_url) from None
        raise
    except BaseException:
        store.close()
        raise
    return store


def close_stores() -> None:
    with _lock:
        for store in _stores.values():
            store.close()
        _stores.clear()


__all__ = [
    "METRICS_VIEWS",
    "QuarantineRecord",
    "SessionRecord",
    "StepMetrics",
    "Store",
    "StoreResult",
    "close_stores",
    "open_store",
    "runs_rows",
]
