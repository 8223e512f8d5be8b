"""One run per user at a time: a run holds its users in `sync_user_leases` while it works.

Two runs of one user (a scheduled run and a push event's, a CLI sync started twice) would
list, stage and store the same months at once. Dagster's run queue keeps most of them apart
(the `sync_assets/user` tag, one run per value), but `sync-assets sync` runs in its own
process, outside the queue: so every run also holds the user here, in the database both
share, from its first step to its end.

* A run takes the row when it is free, already its own (a later step, a re-execution sharing
  the root run's id), held by a run the caller knows has ended (`holder_ended`: Dagster says
  so), or not renewed within its ttl (the holder's process died). Otherwise it waits, polling,
  and fails with a retryable error only after `wait_seconds`.
* While a step works, a heartbeat thread renews the row; a heartbeat that finds the row taken
  marks the hold `lost` (staging then refuses the run's pages: `Store.stage_page`).
* Several users are taken in sorted order, so two multi-user runs cannot wait on each other.

A row rather than a PostgreSQL advisory lock: session-level advisory locks do not work behind
PgBouncer or Supavisor in transaction mode, and a row survives a dropped connection (the
retries of `storage.retry`) and exists on SQLite too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType

from sync_assets.core import settings
from sync_assets.core.errors import ErrorType, SyncError
from sync_assets.core.storage.base import LeaseHolder, Store

log = logging.getLogger("sync_assets.leases")


class UserHold:
    """`run_id`'s hold on `users` (use as a context manager: taken on entry, heartbeat while
    inside; freed on exit when `release` is set, else left to the run's later steps)."""

    def __init__(
        self,
        store: Store,
        users: Iterable[str],
        run_id: str,
        *,
        release: bool = False,
        holder_ended: Callable[[str], bool] | None = None,
        on_wait: Callable[[str, LeaseHolder], None] | None = None,
        ttl_seconds: float | None = None,
        wait_seconds: float | None = None,
        poll_seconds: float = 0.5,
    ) -> None:
        self.store = store
        self.users = sorted(set(users))
        self.run_id = run_id
        self.release_on_exit = release
        self.holder_ended = holder_ended
        self.on_wait = on_wait
        self.ttl = ttl_seconds if ttl_seconds is not None else settings.user_lease_seconds()
        self.wait_seconds = (
            wait_seconds if wait_seconds is not None else settings.user_wait_seconds()
        )
        self.poll = poll_seconds
        self.beat_every = min(max(self.ttl / 5, 0.05), 15.0)
        self.waited = 0.0  # seconds spent waiting for other runs
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- taking ---------------------------------------------------------------------------
    def acquire(self) -> None:
        for user in self.users:
            self._take(user)

    def _take(self, user: str) -> None:
        started = time.monotonic()
        told: str | None = None
        while True:
            if self.store.lease_take(user, self.run_id, self.ttl):
                break
            holder = self.store.lease_holder(user)
            if holder is None:
                continue  # freed between the two statements
            if self.holder_ended is not None and self.holder_ended(holder.run_id):
                if self.store.lease_take(user, self.run_id, self.ttl, ended_run=holder.run_id):
                    log.info(f"user {user}: run {holder.run_id} had ended; {self.run_id} goes on")
                    break
                continue
            if told != holder.run_id:
                told = holder.run_id
                log.info(f"user {user}: run {self.run_id} waits for run {holder.run_id} to end")
                if self.on_wait is not None:
                    self.on_wait(user, holder)
            if time.monotonic() - started > self.wait_seconds:
                raise SyncError(
                    ErrorType.UNKNOWN,
                    f"another run of user {user} (run {holder.run_id}) was still working "
                    f"after {self.wait_seconds:.0f} s; not syncing the user twice at once",
                    retryable=True,
                    details={"holder": holder.run_id},
                )
            time.sleep(self.poll)
        self.waited += time.monotonic() - started

    # -- holding --------------------------------------------------------------------------
    def _beat(self) -> None:
        while not self._stop.wait(self.beat_every):
            for user in self.users:
                try:
                    if self.store.lease_renew(user, self.run_id):
                        continue
                    holder = self.store.lease_holder(user)
                    if holder is not None and holder.run_id != self.run_id:
                        self.lost = True
                        log.error(f"run {self.run_id} lost user {user} to run {holder.run_id}")
                    # else the run's last step freed the user: its work is done
                except SyncError as err:  # the database stayed away past the retries
                    log.warning(f"heartbeat of run {self.run_id} failed: {err}")

    def release(self) -> None:
        for user in reversed(self.users):
            self.store.lease_release(user, self.run_id)

    def __enter__(self) -> UserHold:
        self.acquire()
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-{self.run_id[:8]}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.release_on_exit:
            try:
                self.release()
            except SyncError as err:  # expires after its ttl instead
                log.warning(f"run {self.run_id} could not free its users: {err}")
