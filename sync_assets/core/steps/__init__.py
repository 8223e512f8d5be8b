"""The work behind each asset step, one call per asset, with no Dagster in it.

`sync_assets.core.ingest.fetch_partitions` fetches (`raw_strava_activities`),
`steps.enrich.enrich_partitions` enriches (`weather_enriched_activities`) and
`steps.store.store_partitions` stores (`runs_table`). Each keeps the run's `sync_sessions` up
to date and fills an outcome the asset turns into its metadata and its step metrics; the assets
only read their inputs, build the clients from their resources, make the call, translate a
failure into Dagster's terms and return the metadata.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sync_assets.core.errors import ErrorInfo, ErrorType, SyncError
from sync_assets.core.redaction import redact

if TYPE_CHECKING:
    from sync_assets.core.sessions import SessionTracker

log = logging.getLogger("sync_assets.steps")


def classified(exc: BaseException) -> ErrorInfo:
    """What a step's failure is, as a session records it: a `SyncError` as classified, any
    other error by its type and first line (redacted), retryable (a later run may pass)."""
    if isinstance(exc, SyncError):
        return exc.info()
    first = (str(exc).strip().splitlines() or [""])[0]
    return ErrorInfo(
        type=ErrorType.UNKNOWN,
        message=redact(f"{type(exc).__name__}: {first}"[:500]),
        retryable=True,
    )


def fail_session(tracker: SessionTracker, error: ErrorInfo) -> None:
    """End the tracker's session `failed` with `error`, if the database lets it: a step that
    failed because the database went away cannot always say so (the run's end does it then:
    `local_runs.fail_open_sessions`, the run status sensors)."""
    try:
        tracker.fail(error)
    except SyncError as err:
        log.warning(f"could not record the failure of session {tracker.session.id}: {err}")
