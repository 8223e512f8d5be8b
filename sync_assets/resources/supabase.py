"""`SupabaseResource`: the pipeline's database, Supabase/PostgreSQL or the embedded SQLite."""

import threading
from typing import TYPE_CHECKING

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

if TYPE_CHECKING:  # storage imports resources.tokens: import it lazily to avoid a cycle
    from sync_assets.core.storage import Store

# The store of each run being executed in this process, and how many resource copies use it.
_run_stores: dict[tuple[str, str, str], tuple["Store", int]] = {}
_run_stores_lock = threading.Lock()


def _acquire_run_store(
    key: tuple[str, str, str], database_url: str | None, data_dir: str
) -> "Store":
    from sync_assets.core.storage import open_store

    with _run_stores_lock:
        store, users = _run_stores.get(key) or (None, 0)
        if store is None:
            store = open_store(database_url, data_dir)
        _run_stores[key] = (store, users + 1)
        return store


def _release_run_store(key: tuple[str, str, str]) -> None:
    with _run_stores_lock:
        store, users = _run_stores.pop(key)
        if users > 1:
            _run_stores[key] = (store, users - 1)
            return
    store.close()


class SupabaseResource(ConfigurableResource):
    """`database_url` is Supabase's direct connection string, or any transaction pooler's
    (Supabase's on port 6543, a PgBouncer anywhere): the store prepares no statement on the
    server and keeps no session state, so it works the same through both. Without it, the
    embedded default: a SQLite database in `data_dir` with the same tables and behaviour.
    Set it with `EnvVar("DATABASE_URL")`: the URL holds a password and is never logged.

    Its store lives as long as a Dagster execution of the resource: a run (a step's process,
    with the multiprocess executor) or a sensor/schedule tick opens it when the resource is
    set up and closes it at teardown, whatever happened in between. Dagster sets up a copy
    of the resource per execution, so each execution has a store of its own (a run's copies,
    the top-level one and `StravaResource`'s, share the run's).

    It has a teardown, so Dagster builds a sensor context holding it only as a context
    manager (`with build_sensor_context(resources=...) as context:`). Outside an execution (a
    resource object used directly, in a test or a script), `store()` opens one on first use;
    `close()` closes it, and `storage.close_stores()` closes any left open.
    """

    database_url: str | None = Field(default=None, description="DATABASE_URL")
    data_dir: str = Field(description="folder of the embedded default (SYNC_ASSETS_HOME)")

    _store: "Store | None" = PrivateAttr(default=None)
    _store_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _run_key: tuple[str, str, str] | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        run = context.run
        if run is not None:
            # Dagster sets up a nested resource (`StravaResource.supabase`) as a copy of its
            # own, even when the same object is also the top-level `supabase`: both copies of
            # one run share the run's store (one pool per run and process, as its pool
            # statistics assume), closed when the last of them is torn down.
            self._run_key = (run.run_id, self.database_url or "", self.data_dir)
            self._store = _acquire_run_store(self._run_key, self.database_url, self.data_dir)
            # The run's worker process and host, for `reconcile_sync_sessions` (local_runs).
            from sync_assets.local_runs import record_run_process

            if context.instance is not None:
                record_run_process(context.instance, run)
        else:  # a sensor or schedule tick: a store of its own for the tick
            self.store()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        key, self._run_key = self._run_key, None
        if key is None:
            self.close()
            return
        with self._store_lock:
            self._store = None
        _release_run_store(key)

    def store(self) -> "Store":
        """This resource's store (opened on first use outside an execution)."""
        with self._store_lock:
            if self._store is None:
                from sync_assets.core.storage import open_store

                self._store = open_store(self.database_url, self.data_dir)
            return self._store

    def close(self) -> None:
        """Close the store, if open; the next `store()` opens a new one."""
        with self._store_lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()
