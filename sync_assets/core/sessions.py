"""`sync_sessions`: one row per user and Dagster run, moved through the sync's phases.

    initiated -> fetching_activities -> enriching_weather -> storing_data -> completed
    initiated -> enriching_weather -> ...   (a run that re-enriches stored activities)
    any phase -> failed -> retrying -> the phase it failed in (or a later one)
    completed | cancelled -> retrying -> ...   (a re-execution of a finished run)

Beside the state, `current_phase` is the seed's phase (`SyncPhase`): `fetching`, `enriching`,
`storing`, `completed`; a failed, retrying or cancelled session keeps the phase it was in.
`error_count` is the errors recorded on the session: each failure it recorded (`fail()`, or
the run status sensor's) plus `activities_failed` (activities quarantined or refused by the
database). `last_activity_at` is the time of the tracker's last write.

Writes are rate-limited (at most one progress write per `min_interval` seconds, phase changes
and the end always written) so a Supabase Realtime subscriber sees progress move without the
pipeline writing once per row. A re-execution of a run shares its root run's session.

`progress` holds the phase's figures (`processed`, `total`, `errors`, `estimated_completion`),
the notes, and what the weather step adds: `weather_requests` (finished so far),
`weather_requests_planned`, `weather_budget_waits`, and `waiting` ({seconds, for, until}) while
it waits for a provider's budget. The `weather_*` figures stay in the later phases' progress
(what the sync spent); `waiting` goes when the wait ends.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sync_assets.core.errors import ErrorInfo
from sync_assets.core.storage.base import DeauthorizedError, SessionRecord, Store


class SyncState(StrEnum):
    INITIATED = "initiated"
    FETCHING = "fetching_activities"
    ENRICHING = "enriching_weather"
    STORING = "storing_data"
    COMPLETED = "completed"
    FAILED = "failed"
    RETRYING = "retrying"
    CANCELLED = "cancelled"


PHASES = (SyncState.FETCHING, SyncState.ENRICHING, SyncState.STORING)
# sync_sessions.current_phase: the seed's SyncPhase of each state that has one.
PHASE_NAMES: dict[SyncState, str] = {
    SyncState.FETCHING: "fetching",
    SyncState.ENRICHING: "enriching",
    SyncState.STORING: "storing",
    SyncState.COMPLETED: "completed",
}
TERMINAL = frozenset({SyncState.COMPLETED, SyncState.FAILED, SyncState.CANCELLED})
# Keys of `progress` that later phases keep (the weather step's figures): see the docstring.
CARRIED_PREFIX = "weather_"

ALLOWED: dict[SyncState, frozenset[SyncState]] = {
    # A run that only re-enriches (weather retry) starts at enriching_weather.
    SyncState.INITIATED: frozenset(
        {SyncState.FETCHING, SyncState.ENRICHING, SyncState.FAILED, SyncState.CANCELLED}
    ),
    # Enrichment may be skipped (no enrichment asset selected): fetching -> storing is legal.
    SyncState.FETCHING: frozenset(
        {SyncState.ENRICHING, SyncState.STORING, SyncState.FAILED, SyncState.CANCELLED}
    ),
    SyncState.ENRICHING: frozenset({SyncState.STORING, SyncState.FAILED, SyncState.CANCELLED}),
    SyncState.STORING: frozenset({SyncState.COMPLETED, SyncState.FAILED, SyncState.CANCELLED}),
    SyncState.FAILED: frozenset({SyncState.RETRYING}),
    SyncState.RETRYING: frozenset({*PHASES, SyncState.FAILED, SyncState.CANCELLED}),
    # Only a re-execution of the run reopens a finished session (it shares the root's session).
    SyncState.COMPLETED: frozenset({SyncState.RETRYING}),
    SyncState.CANCELLED: frozenset({SyncState.RETRYING}),
}


class InvalidTransition(ValueError):
    pass


def check_transition(current: str, new: str) -> None:
    if SyncState(new) not in ALLOWED[SyncState(current)]:
        raise InvalidTransition(f"sync session cannot go from {current} to {new}")


class SessionTracker:
    """Keeps one session row up to date for one user within one Dagster run."""

    def __init__(
        self,
        store: Store,
        *,
        run_id: str,
        user_id: str,
        sync_type: str = "backfill",
        time_range_start: datetime | None = None,
        time_range_end: datetime | None = None,
        min_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.user_id = user_id
        self.min_interval = min_interval
        self.notes: list[str] = []  # what the front end should say beside the progress
        self._last_write = 0.0
        self._phase_started = time.monotonic()
        self.session: SessionRecord = store.create_session(
            run_id=run_id,
            user_id=user_id,
            sync_type=sync_type,
            time_range_start=time_range_start,
            time_range_end=time_range_end,
        )

    @property
    def state(self) -> SyncState:
        return SyncState(self.session.status)

    def _write(self, **changes: Any) -> SessionRecord:
        if "activities_failed" in changes and "error_count" not in changes:
            # error_count = failures recorded + activities_failed: the failures stay counted.
            failures = max(self.session.error_count - self.session.activities_failed, 0)
            changes["error_count"] = failures + changes["activities_failed"]
        changes.setdefault("last_activity_at", datetime.now(UTC))
        self.session = self.store.update_session(self.run_id, self.user_id, **changes)
        self._last_write = time.monotonic()
        return self.session

    def enter(self, phase: SyncState, **counters: Any) -> SessionRecord:
        """Move to `phase` (through `retrying` when the session had failed)."""
        if self.state == phase:
            return self._write(**counters) if counters else self.session
        if self.state in TERMINAL:  # a re-execution (or a step retry) of a finished sync
            self._write(status=SyncState.RETRYING.value, retry_count=self.session.retry_count + 1)
        check_transition(self.state, phase)
        self._phase_started = time.monotonic()
        return self._write(
            status=phase.value,
            current_phase=PHASE_NAMES[phase],
            progress=self._with_notes(
                {"phase": phase.value, "processed": 0, "total": None, "errors": 0}
            ),
            **counters,
        )

    def note(self, text: str) -> SessionRecord:
        """Keep a note in the session's progress from now on (e.g. what the scopes hide)."""
        if text not in self.notes:
            self.notes.append(text)
        return self._write(progress=self._with_notes(dict(self.session.progress or {})))

    def _with_notes(self, progress: dict[str, Any]) -> dict[str, Any]:
        """`progress` with the session's notes and the weather step's figures (earlier steps'
        included: each step has its own tracker)."""
        before = self.session.progress or {}
        carried = {k: v for k, v in before.items() if k.startswith(CARRIED_PREFIX)}
        progress = {**carried, **progress}
        earlier = before.get("notes") or []
        notes = list(dict.fromkeys([*earlier, *(progress.get("notes") or []), *self.notes]))
        return {**progress, "notes": notes} if notes else progress

    def progress(
        self,
        processed: int,
        total: int | None = None,
        errors: int = 0,
        *,
        force: bool = False,
        details: Mapping[str, Any] | None = None,
        **counters: Any,
    ) -> SessionRecord:
        """Report progress within the phase; written at most once per `min_interval`.

        `details` are more keys of `progress` (the weather step's `weather_requests`,
        `waiting`...): a key left out of a later write is gone from the progress, except the
        carried `weather_*` figures."""
        now = time.monotonic()
        if not force and now - self._last_write < self.min_interval:
            return self.session
        progress = self._progress(processed, total, errors)
        if details:
            progress = {**progress, **details}
        return self._write(progress=progress, **counters)

    def _progress(self, processed: int, total: int | None, errors: int) -> dict[str, Any]:
        eta = None
        elapsed = time.monotonic() - self._phase_started
        if total and processed and elapsed > 0:
            remaining = max(total - processed, 0) * elapsed / processed
            eta = (datetime.now(UTC) + timedelta(seconds=remaining)).isoformat()
        return self._with_notes(
            {
                "phase": self.session.status,
                "processed": processed,
                "total": total,
                "errors": errors,
                "estimated_completion": eta,
            }
        )

    def checkpoint(
        self,
        page: int,
        data: dict[str, Any],
        processed: int | None = None,
        errors: int = 0,
        **counters: Any,
    ) -> SessionRecord:
        """A page is safe: its checkpoint, and the progress with it (one write per page)."""
        if processed is not None:
            counters["progress"] = self._progress(processed, None, errors)
        return self._write(last_successful_page=page, checkpoint_data=data, **counters)

    def complete(self, **counters: Any) -> SessionRecord:
        """The sync succeeded: its own earlier failure (a re-execution of it succeeded now)
        and those of the user's earlier sessions over the same months are `resolved`."""
        if self.state != SyncState.STORING:
            self.enter(SyncState.STORING)
        last = self.session.last_error
        if last and not last.get("resolved"):
            counters["last_error"] = {**last, "resolved": True}
        session = self._write(
            status=SyncState.COMPLETED.value,
            current_phase=PHASE_NAMES[SyncState.COMPLETED],
            completed_at=datetime.now(UTC),
            progress={**self.session.progress, "phase": "completed"},
            **counters,
        )
        self.store.resolve_errors(session)
        return session

    def fail(self, error: ErrorInfo) -> SessionRecord:
        if self.state in TERMINAL:
            return self.session
        # current_phase stays: the phase that failed (and the error names it).
        error = error.model_copy(update={"phase": error.phase or self.state.value})
        return self._write(
            status=SyncState.FAILED.value,
            last_error=error.model_dump(mode="json"),
            completed_at=datetime.now(UTC),
            error_count=self.session.error_count + 1,
        )


def finish_from_run_status(
    store: Store, run_id: str, *, success: bool, reason: str | None
) -> list[SessionRecord]:
    """Write the final state of every session of a finished run (idempotent).

    Used by the run status sensors, `reconcile_sync_sessions` and `sync-assets sync`: a run
    killed from outside (crash, cancel), or one whose failure the asset code could not write
    (its database connection dropped), never reaches the code that would have said so. The
    session of an athlete who deauthorized the app meanwhile is gone with their data and is
    not written again (`DeauthorizedError`): it is skipped.
    """
    finished = []
    for session in store.run_sessions(run_id):
        state = SyncState(session.status)
        if state in TERMINAL:
            continue
        if success:
            changes: dict[str, Any] = {
                "status": SyncState.COMPLETED.value,
                "current_phase": PHASE_NAMES[SyncState.COMPLETED],
            }
        else:
            info = ErrorInfo(
                type="UNKNOWN",
                message=reason or "the Dagster run failed",
                retryable=True,
                details={"dagster_run_id": run_id, "phase": session.status},
                phase=session.status,
            )
            changes = {
                "status": SyncState.FAILED.value,
                "last_error": info.model_dump(mode="json"),
                "error_count": session.error_count + 1,
            }
        try:
            finished.append(
                store.update_session(
                    run_id, session.user_id, completed_at=datetime.now(UTC), **changes
                )
            )
        except DeauthorizedError:
            continue
    return finished


ROOT_RUN_TAG = "dagster/root_run_id"
SYNC_TYPE_TAG = "sync_assets/sync_type"


def session_key(run_tags: dict[str, str] | Any, run_id: str) -> str:
    """Re-executions of a run share its session (so failed -> retrying is visible)."""
    return run_tags.get(ROOT_RUN_TAG) or run_id


def tracker_for_run(
    store: Store,
    run: Any,
    user_id: str,
    *,
    time_range_start: datetime | None,
    time_range_end: datetime | None,
) -> SessionTracker:
    """The tracker of `user_id` in Dagster run `run` (created on first use, then reused)."""
    return SessionTracker(
        store,
        run_id=session_key(run.tags, run.run_id),
        user_id=user_id,
        sync_type=run.tags.get(SYNC_TYPE_TAG, "backfill"),
        time_range_start=time_range_start,
        time_range_end=time_range_end,
    )
