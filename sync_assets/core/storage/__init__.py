"""Storage backends: PostgreSQL/Supabase in production, SQLite as the embedded default."""

from __future__ import annotations

import threading
from pathlib import Path

from sync_assets.core.storage.base import (
    METRICS_VIEWS,
    ListingWatermark,
    QuarantineRecord,
    SessionRecord,
    StepMetrics,
    Store,
    StoreResult,
    runs_rows,
)
from sync_assets.core.storage.crypto import EnvTokenCipher, local_cipher

# Every store `open_store` opened that is not closed yet. Not a cache: each caller gets a store
# of its own and closes it (runs and sensor ticks through `SupabaseResource`, applications with
# `with open_store(...) as store:`). `close_stores` closes what is left: the tests' safety net
# (a pool left open would keep a test's database from being dropped).
_open: dict[int, Store] = {}
_lock = threading.Lock()
# Databases this process has migrated: a store is opened per run and per sensor tick, and the
# migrations (an advisory lock and a read of schema_migrations) need to run once per process.
_migrated: set[str] = set()


def open_store(database_url: str | None, data_dir: str | Path) -> Store:
    """A new store for this deployment (PostgreSQL when `database_url`, else the embedded
    SQLite in `data_dir`), migrated; the caller closes it (`store.close()`, or `with`)."""
    data_dir = Path(data_dir)
    if database_url:
        store = _open_postgres(database_url)
    else:
        from sync_assets.core.storage.sqlite import SqliteStore

        store = SqliteStore(data_dir / "sync_assets.db", local_cipher(data_dir / "encryption.key"))
    _track(store)
    return store


def _track(store: Store) -> None:
    """Remember `store` until it is closed (`close_stores` closes it otherwise)."""
    close = store.close

    def closing() -> None:
        with _lock:
            _open.pop(id(store), None)
        close()

    store.close = closing  # type: ignore[method-assign]
    with _lock:
        _open[id(store)] = store


def _open_postgres(database_url: str) -> Store:
    """A migrated PostgreSQL store; a database that is down, missing or lacks Supabase's auth
    schema is one clear error (host, port and database named), not a pool time-out."""
    import psycopg

    from sync_assets.core import dbinit
    from sync_assets.core.storage.postgres import PostgresStore

    dbinit.check_reachable(database_url)
    store = PostgresStore(database_url, EnvTokenCipher())
    if database_url in _migrated:
        return store
    try:
        store.migrate()
        with _lock:
            _migrated.add(database_url)
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
    """Close every store `open_store` opened in this process that is still open."""
    with _lock:
        stores = list(_open.values())
    for store in stores:
        store.close()


__all__ = [
    "METRICS_VIEWS",
    "ListingWatermark",
    "QuarantineRecord",
    "SessionRecord",
    "StepMetrics",
    "Store",
    "StoreResult",
    "close_stores",
    "open_store",
    "runs_rows",
]
