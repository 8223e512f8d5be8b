"""The seed's `SyncResponse`, built from a `sync_sessions` row: what `sync-assets sync --json`
and `sync-assets status --json` print, so a script can follow a sync without parsing text.

One object per session, i.e. per user of a sync: `syncId` is the session's id
(`sync_sessions.id`, which `runs.sync_session_id` names), `runId` the root Dagster run it
belongs to (the logs' `sync_id`, shared by the run's users and its re-executions). The
project's states map onto the seed's `SyncStatus` as they are, except `cancelled`, which the
seed lacks: it reads `failed` with the error code `CANCELLED`. `error` is there only when the
sync failed; `last_error` is read defensively (our `ErrorInfo`, the seed's `ErrorReport`, a
JSON text or plain text) and what it holds goes into `error.context`.

The JSON Schema of the object ships in `sync_assets/schemas/sync_response.schema.json`,
generated from these models: `python -m sync_assets.core.responses` writes it again
(`--check` exits 1 when the committed file differs), `sync-assets schema` prints it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from sync_assets.core.errors import RETRYABLE_TYPES
from sync_assets.core.storage.base import SessionRecord, StepMetrics, Store

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "sync_response.schema.json"
SCHEMA_ID = "https://github.com/sync-assets/sync_assets/schemas/sync_response.schema.json"
FAILED_ACTIVITIES_LIMIT = 100  # failedActivities lists at most this many (`failed` counts all)


class SyncStatus(StrEnum):
    """The seed's sync states (its state diagram), as `sync_sessions.status` spells them."""

    INITIATED = "initiated"
    FETCHING_ACTIVITIES = "fetching_activities"
    ENRICHING_WEATHER = "enriching_weather"
    STORING_DATA = "storing_data"
    COMPLETED = "completed"
    FAILED = "failed"
    RETRYING = "retrying"


class SyncPhase(StrEnum):
    """The seed's phases, as `sync_sessions.current_phase` holds them."""

    FETCHING = "fetching"
    ENRICHING = "enriching"
    STORING = "storing"
    COMPLETED = "completed"


PhaseStatus = Literal["pending", "in_progress", "completed", "failed"]
PHASE_ORDER = (SyncPhase.FETCHING, SyncPhase.ENRICHING, SyncPhase.STORING)
# The Dagster step (asset) of each phase, as `sync_step_metrics.step` names it.
PHASE_STEPS = {
    "raw_strava_activities": SyncPhase.FETCHING,
    "weather_enriched_activities": SyncPhase.ENRICHING,
    "runs_table": SyncPhase.STORING,
}
STATE_PHASES = {
    "initiated": SyncPhase.FETCHING,
    "fetching_activities": SyncPhase.FETCHING,
    "enriching_weather": SyncPhase.ENRICHING,
    "storing_data": SyncPhase.STORING,
    "completed": SyncPhase.COMPLETED,
}
# The seed's ErrorType names that are retryable, beside ours (errors.RETRYABLE_TYPES).
SEED_RETRYABLE = frozenset({"NETWORK_ERROR", "TEMPORARY_API_ERROR", "DATABASE_TIMEOUT"})
# last_error keys (ours are snake_case) -> the seed's ErrorReport.context names.
CONTEXT_NAMES = {
    "status_code": "httpStatus",
    "http_status": "httpStatus",
    "retry_after": "retryAfter",
    "retry_count": "retryCount",
    "api_endpoint": "apiEndpoint",
    "activity_id": "activityId",
    "batch_id": "batchId",
    "dagster_run_id": "dagsterRunId",
}
# last_error keys that are ErrorInfo's own fields, not context.
ERROR_FIELDS = frozenset(
    {
        "type",
        "code",
        "errorType",
        "error_type",
        "message",
        "retryable",
        "phase",
        "timestamp",
        "occurred_at",
        "context",
        "details",
        "syncId",
        "userId",
        "resolved",
    }
)


class _Model(BaseModel):
    """camelCase on the wire (the seed's TypeScript names), snake_case in Python; no field
    beyond the declared ones, so the schema says exactly what a consumer gets."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class PhaseProgress(_Model):
    status: PhaseStatus
    processed: int
    total: int
    errors: int
    start_time: datetime | None = None
    end_time: datetime | None = None


class PhaseProgressByPhase(_Model):
    fetching: PhaseProgress
    enriching: PhaseProgress
    storing: PhaseProgress


class SyncProgress(_Model):
    total_activities: int
    processed_activities: int
    current_phase: SyncPhase
    phase_progress: PhaseProgressByPhase
    start_time: datetime
    estimated_completion: datetime | None = None


class FailedActivity(_Model):
    """An activity the sync quarantined: invalid from Strava (`validation`) or refused by the
    database (`store`)."""

    strava_id: int | None
    reason: str
    source: str


class SyncResults(_Model):
    """The seed's `StoreResponse`: its `results` counts, flattened, and `failedActivities`."""

    saved: int
    updated: int
    skipped: int
    failed: int
    failed_activities: list[FailedActivity] = Field(default_factory=list)


class ErrorInfo(_Model):
    code: str
    message: str
    phase: SyncPhase
    retryable: bool
    context: dict[str, Any]
    timestamp: datetime


class SyncResponse(_Model):
    """The seed's `SyncResponse` for one user of a sync, with `userId` and `runId` beside it
    (one object per user: these tell them apart and name the Dagster run)."""

    sync_id: str
    user_id: str
    run_id: str
    status: SyncStatus
    progress: SyncProgress
    results: SyncResults
    error: ErrorInfo | None = None

    def to_json(self) -> str:
        """One line of JSON: the optional fields left out when unknown (never null)."""
        return json.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True))


# -- from a session ---------------------------------------------------------------------------
def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _time(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _phase(value: Any) -> SyncPhase | None:
    if isinstance(value, str):
        if value in SyncPhase.__members__.values():
            return SyncPhase(value)
        return STATE_PHASES.get(value)
    return None


def error_payload(raw: Any) -> dict[str, Any]:
    """`last_error` as a dict, whatever was stored: a dict, JSON text of one, plain text."""
    if raw is None:
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    text = str(raw)
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"message": text}
    return dict(parsed) if isinstance(parsed, Mapping) else {"message": text}


def error_info(session: SessionRecord, *, cancelled: bool = False) -> ErrorInfo:
    """The seed's ErrorInfo of a failed session, from its `last_error` and counters."""
    payload = error_payload(session.last_error)
    raw_code = next(
        (payload[k] for k in ("code", "type", "errorType", "error_type") if payload.get(k)),
        None,
    )
    code = "CANCELLED" if cancelled else str(raw_code or "UNKNOWN").upper()
    retryable = payload.get("retryable")
    if not isinstance(retryable, bool):
        retryable = cancelled or code in RETRYABLE_TYPES or code in SEED_RETRYABLE
    details = payload.get("details") if isinstance(payload.get("details"), Mapping) else {}
    seed_context = payload.get("context") if isinstance(payload.get("context"), Mapping) else {}
    phase = (
        _phase(payload.get("phase"))
        or _phase(details.get("phase"))
        or _phase(session.current_phase)
        or SyncPhase.FETCHING
    )
    context: dict[str, Any] = {}
    extra = {k: v for k, v in payload.items() if k not in ERROR_FIELDS}
    for source in (extra, details, seed_context):
        for key, value in source.items():
            if key != "phase" and value is not None:
                context[CONTEXT_NAMES.get(key, key)] = value
    context.setdefault("retryCount", session.retry_count)
    if raw_code and cancelled:
        context.setdefault("errorType", str(raw_code))
    message = payload.get("message")
    if not isinstance(message, str) or not message.strip():
        message = "the sync was cancelled" if cancelled else "the sync failed"
    timestamp = (
        _time(payload.get("timestamp"))
        or _time(payload.get("occurred_at"))
        or session.completed_at
        or session.last_activity_at
        or datetime.now(UTC)
    )
    return ErrorInfo(
        code=code,
        message=message,
        phase=phase,
        retryable=retryable,
        context=json.loads(json.dumps(context, default=str)),  # JSON values only
        timestamp=timestamp,
    )


def phase_times(metrics: Iterable[StepMetrics]) -> dict[SyncPhase, tuple[datetime, datetime]]:
    """Each phase's start and end from its step's `sync_step_metrics` row (the latest, when a
    re-execution ran it again): end = when it was recorded, start = end - its seconds."""
    times: dict[SyncPhase, tuple[datetime, datetime]] = {}
    for m in metrics:
        phase = PHASE_STEPS.get(m.step)
        if phase is None or m.recorded_at is None:
            continue
        end = _time(m.recorded_at)
        if end is None:
            continue
        times[phase] = (end - timedelta(seconds=m.seconds), end)
    return times


def _statuses(status: str, current: SyncPhase, failed: bool) -> dict[SyncPhase, PhaseStatus]:
    """Pending, in progress, completed or failed per phase: the phases before the current one
    are done, the current one is running (or failed), the later ones are pending."""
    if status == SyncStatus.COMPLETED or current == SyncPhase.COMPLETED:
        return dict.fromkeys(PHASE_ORDER, "completed")
    at = PHASE_ORDER.index(current)
    here: PhaseStatus = (
        "failed" if failed else "pending" if status == SyncStatus.INITIATED else "in_progress"
    )
    return {
        phase: "completed" if i < at else here if i == at else "pending"
        for i, phase in enumerate(PHASE_ORDER)
    }


def sync_response(
    session: SessionRecord,
    *,
    failed_activities: Sequence[Mapping[str, Any]] = (),
    times: Mapping[SyncPhase, tuple[datetime, datetime]] | None = None,
) -> SyncResponse:
    """The SyncResponse of one session (see the module's docstring for the mapping)."""
    cancelled = session.status == "cancelled"
    status = SyncStatus.FAILED if cancelled else SyncStatus(session.status)
    failed = status == SyncStatus.FAILED
    current = _phase(session.current_phase) or STATE_PHASES.get(session.status, SyncPhase.FETCHING)
    statuses = _statuses(status, current, failed)
    progress = session.progress or {}
    s = session
    stored = s.activities_stored + s.activities_updated + s.activities_skipped
    done = stored + s.activities_failed
    fetched_total = s.activities_fetched if statuses[SyncPhase.FETCHING] == "completed" else None
    live = {"processed": _int(progress.get("processed")), "total": _int(progress.get("total"))}
    figures = {
        SyncPhase.FETCHING: {
            "processed": s.activities_fetched,
            "total": fetched_total if fetched_total is not None else s.total_activities_estimated,
            "errors": s.activities_failed,
        },
        SyncPhase.ENRICHING: {
            "processed": live["processed"]
            if statuses[SyncPhase.ENRICHING] == "in_progress"
            else s.activities_enriched,
            "total": live["total"]
            if statuses[SyncPhase.ENRICHING] == "in_progress" and live["total"]
            else s.activities_fetched or s.total_activities_estimated,
            "errors": 0,
        },
        SyncPhase.STORING: {
            "processed": done if statuses[SyncPhase.STORING] == "completed" else stored,
            "total": s.total_activities_estimated,
            "errors": 0,
        },
    }
    times = dict(times or {})
    phases: dict[str, PhaseProgress] = {}
    for phase in PHASE_ORDER:
        state = statuses[phase]
        start, end = times.get(phase, (None, None))
        if phase == SyncPhase.FETCHING and state != "pending":
            start = start or s.started_at
        if state not in ("completed", "failed"):
            end = None
        elif phase == SyncPhase.STORING and state == "completed":
            end = end or s.completed_at
        numbers = figures[phase]
        phases[phase.value] = PhaseProgress(
            status=state,
            processed=numbers["processed"],
            total=numbers["total"],
            errors=numbers["errors"] + (1 if state == "failed" else 0),
            start_time=start if state != "pending" else None,
            end_time=end,
        )
    if status == SyncStatus.COMPLETED:
        processed = done
    elif current in PHASE_ORDER:
        processed = phases[current.value].processed
    else:
        processed = done
    eta = (
        None
        if status in (SyncStatus.COMPLETED, SyncStatus.FAILED)
        else progress.get("estimated_completion")
    )
    return SyncResponse(
        sync_id=s.id,
        user_id=s.user_id,
        run_id=s.dagster_run_id,
        status=status,
        progress=SyncProgress(
            total_activities=s.total_activities_estimated,
            processed_activities=processed,
            current_phase=current,
            phase_progress=PhaseProgressByPhase(**phases),
            start_time=s.started_at or s.last_activity_at or datetime.now(UTC),
            estimated_completion=_time(eta),
        ),
        results=SyncResults(
            saved=s.activities_stored,
            updated=s.activities_updated,
            skipped=s.activities_skipped,
            failed=s.activities_failed,
            failed_activities=[
                FailedActivity(
                    strava_id=q.get("strava_id"),
                    reason=str(q.get("reason", "")),
                    source=str(q.get("source", "validation")),
                )
                for q in failed_activities
            ],
        ),
        error=error_info(s, cancelled=cancelled) if failed else None,
    )


def response_for(store: Store, session: SessionRecord) -> SyncResponse:
    """The SyncResponse of `session` with what the store adds: the activities it quarantined
    and its phases' times (from `sync_step_metrics`)."""
    since = (session.started_at or datetime.now(UTC)) - timedelta(minutes=1)
    metrics = store.step_metrics(since=since, sync_id=session.dagster_run_id)
    return sync_response(
        session,
        failed_activities=store.session_quarantine(session.id, FAILED_ACTIVITIES_LIMIT),
        times=phase_times(metrics),
    )


# -- the JSON Schema ------------------------------------------------------------------------
def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of `SyncResponse` as `to_json` writes it."""
    schema = SyncResponse.model_json_schema(by_alias=True, mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the committed schema again (or, with --check, say whether it is current)."""
    parser = argparse.ArgumentParser(prog="python -m sync_assets.core.responses")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs")
    args = parser.parse_args(argv)
    text = schema_text()
    current = SCHEMA_PATH.read_text() if SCHEMA_PATH.exists() else None
    if args.check:
        if current != text:
            print(f"{SCHEMA_PATH} is stale: python -m sync_assets.core.responses", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_PATH.write_text(text)
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
