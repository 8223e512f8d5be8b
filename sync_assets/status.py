"""`sync-assets status`: the recent sync sessions in a terminal, the way the app shows them."""

from datetime import UTC, datetime

from sync_assets.sessions import TERMINAL
from sync_assets.storage.base import SessionRecord

BAR = 20
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


def status_lines(sessions: list[SessionRecord], now: datetime | None = None) -> list[str]:
    """One line per session (newest first), and its error under it; no token is ever here."""
    now = now or datetime.now(UTC)
    if not sessions:
        return ["no sync session yet"]
    lines = []
    for s in sessions:
        started = s.started_at.strftime("%Y-%m-%d %H:%M") if s.started_at else "-"
        lines.append(
            f"{started}  {s.user_id[:8]}  {s.sync_type:<11} {s.status:<19} "
            f"{_bar(_fraction(s))}  {_counts(s)}  {_took(s, now)}".rstrip()
        )
        if s.last_error and s.status in ("failed", "retrying", "cancelled"):
            err = s.last_error
            retry = "retryable" if err.get("retryable") else "not retryable"
            after = f", retry after {err['retry_after']}" if err.get("retry_after") else ""
            message = str(err.get("message", "")).splitlines()[0][:160] if err else ""
            lines.append(f"{'':18}error: {err.get('type', '?')} ({retry}{after}): {message}")
    return lines
