"""`sync-assets status`: the recent sync sessions in a terminal, the way the app shows them.

`status_report` reads the configured store (`DATABASE_URL`, else the embedded default in
`SYNC_ASSETS_HOME`); when that holds no session yet and the folder's `demo/` holds the demo's
(`sync-assets demo`), it shows those and says so in its first line. User ids are shown as
their shortest prefix (8 characters at least) that tells the users on screen apart.
`status_json` (`--json`) prints the same sessions as the seed's SyncResponse, one JSON object
per line (`sync_assets.core.responses`); `--sync-id` picks one session (or a run's sessions).
"""

import sys
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from sync_assets.core.errors import ErrorType, SyncError
from sync_assets.core.sessions import TERMINAL
from sync_assets.core.storage.base import SessionRecord, Store

BAR = 20
ID_CHARS = 8  # a uuid's first group
DEMO_FOLDER = "demo"  # `sync-assets demo`'s data: $SYNC_ASSETS_HOME/demo
DEMO_SETTINGS = "demo.json"  # what `sync-assets demo` saves for `sync-assets ui`
FINISHED = frozenset(state.value for state in TERMINAL)


def _bar(fraction: float | None) -> str:
    if fraction is None:
        return "[" + "?" * BAR + "]     "
    fraction = min(max(fraction, 0.0), 1.0)
    done = round(fraction * BAR)
    return f"[{'#' * done}{'-' * (BAR - done)}] {fraction:4.0%}"


def _fraction(s: SessionRecord) -> float | None:
    if s.status == "completed":
        return 1.0
    processed, total = s.progress.get("processed"), s.progress.get("total")
    if isinstance(processed, int) and isinstance(total, int) and total > 0:
        return processed / total
    return None


def _counts(s: SessionRecord) -> str:
    if s.status in FINISHED and s.status != "completed":
        return (
            f"{s.activities_fetched:,} fetched, {s.activities_stored:,} stored, "
            f"{s.activities_failed:,} failed"
        )
    if s.status in ("completed", "storing_data"):
        return (
            f"{s.activities_fetched:,} fetched, {s.activities_stored:,} new, "
            f"{s.activities_updated:,} updated, {s.activities_failed:,} failed"
        )
    processed, total = s.progress.get("processed"), s.progress.get("total")
    of = f"/{total:,}" if isinstance(total, int) else ""
    done = f"{processed:,}{of}" if isinstance(processed, int) else f"{s.activities_fetched:,}"
    errors = s.progress.get("errors", s.activities_failed)
    eta = s.progress.get("estimated_completion")
    until = f", done ~{eta[11:16]} UTC" if eta and s.status not in FINISHED else ""
    return f"{done} {s.status.split('_')[0]}, {errors:,} failed{until}"


def _took(s: SessionRecord, now: datetime) -> str:
    if s.started_at is None:
        return ""
    seconds = max(((s.completed_at or now) - s.started_at).total_seconds(), 0.0)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def id_width(user_ids: Iterable[str], minimum: int = ID_CHARS) -> int:
    """The shortest prefix length (`minimum` at least) at which these ids are all distinct."""
    ids = set(user_ids)
    longest = max((len(i) for i in ids), default=minimum)
    for width in range(minimum, longest + 1):
        if len({i[:width] for i in ids}) == len(ids):
            return width
    return longest


def status_lines(sessions: list[SessionRecord], now: datetime | None = None) -> list[str]:
    """One line per session (newest first), and its error under it; no token is ever here.
    Users are told apart: ids as long as it takes (`id_width`)."""
    now = now or datetime.now(UTC)
    if not sessions:
        return ["no sync session yet"]
    width = id_width(s.user_id for s in sessions)
    lines = []
    for s in sessions:
        started = s.started_at.strftime("%Y-%m-%d %H:%M") if s.started_at else "-"
        lines.append(
            f"{started}  {s.user_id[:width]:<{width}}  {s.sync_type:<11} {s.status:<19} "
            f"{_bar(_fraction(s))}  {_counts(s)}  {_took(s, now)}".rstrip()
        )
        if s.last_error and s.status in ("failed", "retrying", "cancelled"):
            err = s.last_error
            retry = "retryable" if err.get("retryable") else "not retryable"
            after = f", retry after {err['retry_after']}" if err.get("retry_after") else ""
            message = str(err.get("message", "")).splitlines()[0][:160] if err else ""
            lines.append(f"{'':18}error: {err.get('type', '?')} ({retry}{after}): {message}")
    return lines


def demo_home(data_dir: Path) -> Path | None:
    """The demo's data folder under `data_dir`, if `sync-assets demo` made one there."""
    home = data_dir / DEMO_FOLDER
    return home if (home / DEMO_SETTINGS).is_file() else None


def _store_location(database_url: str | None, data_dir: Path | None) -> tuple[str | None, Path]:
    from sync_assets.core import settings

    if data_dir is None:
        return settings.database_url(), settings.data_dir()
    return database_url, data_dir


def sync_id_arg(value: str) -> str:
    """A `--sync-id`: a session's id or a Dagster run's id, both uuids."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise SyncError(
            ErrorType.CONFIGURATION,
            f"--sync-id {value!r} is not a uuid: give a sync's syncId (or its runId)",
            retryable=False,
        ) from None


def find_sessions(store: Store, sync_id: str) -> list[SessionRecord]:
    """The session whose id is `sync_id`, else the sessions of the run `sync_id` (one per
    user); none when neither exists."""
    session = store.session_by_id(sync_id)
    return [session] if session is not None else store.run_sessions(sync_id)


def run_responses(store: Store, run_id: str) -> list[str]:
    """`sync-assets sync --json`: one SyncResponse line per user of the run."""
    from sync_assets.core.responses import response_for

    return [response_for(store, s).to_json() for s in store.run_sessions(run_id)]


def status_json(
    user_id: str | None = None,
    limit: int = 20,
    sync_id: str | None = None,
    *,
    database_url: str | None = None,
    data_dir: Path | None = None,
) -> list[str]:
    """`sync-assets status --json`: a SyncResponse per line, newest first (of `sync_id`
    only, when given: SystemExit when the store has no such session or run). Like the text,
    the demo's sessions when the configured store has none (said on stderr)."""
    from sync_assets.core.responses import response_for
    from sync_assets.core.storage import open_store

    database_url, data_dir = _store_location(database_url, data_dir)
    demo = demo_home(data_dir) if not database_url else None
    places = [data_dir] + ([demo] if demo is not None else [])
    for place in places:
        with open_store(database_url if place == data_dir else None, place) as store:
            if sync_id is not None:
                sessions = find_sessions(store, sync_id)
                sessions = [s for s in sessions if user_id is None or s.user_id == user_id]
            else:
                sessions = store.recent_sessions(user_id, limit)
            if sessions:
                if place != data_dir:
                    print(f"note: no sync session in {data_dir} yet; the demo's", file=sys.stderr)
                return [response_for(store, s).to_json() for s in sessions]
    if sync_id is not None:
        raise SystemExit(f"error: no sync session or run with id {sync_id}")
    return []


def status_report(
    user_id: str | None = None,
    limit: int = 20,
    *,
    database_url: str | None = None,
    data_dir: Path | None = None,
    now: datetime | None = None,
    sync_id: str | None = None,
) -> list[str]:
    """`sync-assets status`: the newest sessions of the configured store (by default
    `settings.database_url()` and `settings.data_dir()`), else the demo's, saying so. With
    `sync_id`, that session (or run) only: SystemExit when there is none."""
    from sync_assets.core.storage import open_store

    if sync_id is not None:
        database_url, data_dir = _store_location(database_url, data_dir)
        with open_store(database_url, data_dir) as store:
            found = [
                s for s in find_sessions(store, sync_id) if user_id is None or s.user_id == user_id
            ]
        if not found:
            raise SystemExit(f"error: no sync session or run with id {sync_id}")
        return status_lines(found, now)
    database_url, data_dir = _store_location(database_url, data_dir)
    with open_store(database_url, data_dir) as store:
        sessions = store.recent_sessions(user_id, limit)
    demo = demo_home(data_dir) if not sessions and not database_url else None
    if demo is not None:
        with open_store(None, demo) as store:
            found = store.recent_sessions(user_id, limit)
        if found:
            note = (
                f"no sync session in {data_dir} yet; the demo's (`sync-assets demo`, data in "
                f"{demo}; `sync-assets ui` opens them in Dagster):"
            )
            return [note, *status_lines(found, now)]
    return status_lines(sessions, now)
