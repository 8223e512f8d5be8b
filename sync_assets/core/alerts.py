"""The operator's alerts, computed from what the pipeline already records.

Each function answers one question with a figure: too many recent syncs failed; a sync took
more than twice as long as usual for its size; the Strava or weather quota is past 80 %; the
database is running out of connections. `sync_assets/assets/health.py` shows them as asset
checks of `sync_health` (failed check = alert), evaluated by the `sync_health_sensor` every few
minutes and on demand from the UI.
"""

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sync_assets.core.sessions import SyncState
from sync_assets.core.storage.base import SessionRecord, Store

FAILURE_RATE = "sync_failure_rate"
SLOW_SYNCS = "sync_duration"
API_QUOTA = "api_quota"
DB_POOL = "db_pool"

# The bounds of `sync_duration_by_volume` (activities handled by the sync).
VOLUME_BUCKETS = (0, 1, 200, 1_000, 5_000)


@dataclass(frozen=True)
class Alert:
    """One alert's verdict: `fired` with the figure that made it fire (or the calm one)."""

    name: str
    fired: bool
    figure: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


def _finished(sessions: Iterable[SessionRecord]) -> list[SessionRecord]:
    done = {SyncState.COMPLETED, SyncState.FAILED, SyncState.CANCELLED}
    return [s for s in sessions if s.status in done]


def failure_rate(
    store: Store, *, recent: int = 100, threshold: float = 0.05, min_syncs: int = 5
) -> Alert:
    """Fires when more than `threshold` of the last `recent` finished syncs failed."""
    finished = _finished(store.recent_sessions(limit=recent * 2))[:recent]
    failed = [s for s in finished if s.status == SyncState.FAILED]
    rate = len(failed) / len(finished) if finished else 0.0
    fired = len(finished) >= min_syncs and rate > threshold
    figure = (
        f"{len(failed)} of the last {len(finished)} syncs failed ({rate:.1%}; alert above "
        f"{threshold:.0%})"
    )
    errors = [
        f"{s.user_id}: {error.get('type', '?')} {error.get('message', '')}"
        for s in failed[:5]
        for error in [s.last_error or {}]
    ]
    return Alert(
        FAILURE_RATE,
        fired,
        figure,
        {"failed": len(failed), "finished": len(finished), "failure_rate": round(rate, 4)}
        | ({"latest_failures": "\n".join(errors)} if errors else {}),
    )


def volume(session: SessionRecord) -> int:
    """Activities a sync handled: fetched, or stored + updated + skipped for a weather re-run."""
    return session.activities_fetched or (
        session.activities_stored + session.activities_updated + session.activities_skipped
    )


def bucket(activities: int) -> int:
    return max(b for b in VOLUME_BUCKETS if activities >= b)


def _seconds(session: SessionRecord, now: datetime) -> float:
    return ((session.completed_at or now) - session.started_at).total_seconds()


def _span(span: timedelta) -> str:
    minutes = round(span.total_seconds() / 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 and minutes else f"{minutes} min"


def slow_syncs(
    store: Store,
    *,
    recent: int = 500,
    factor: float = 2.0,
    min_history: int = 5,
    look_back: timedelta = timedelta(hours=1),
    now: datetime | None = None,
) -> Alert:
    """Fires for a sync, running or finished within `look_back`, that took more than `factor`
    times the median of the completed syncs of its size (the buckets of
    `sync_duration_by_volume`; at least `min_history` of them make the usual duration). A
    running sync is judged once its listing is done (enriching or storing): before that its
    size is not known."""
    now = now or datetime.now(UTC)
    sessions = store.recent_sessions(limit=recent)
    usual: dict[int, list[tuple[str, float]]] = {}
    sessions = [s for s in sessions if s.started_at is not None]  # nullable in the seed's table
    for s in sessions:
        if s.status == SyncState.COMPLETED and s.completed_at:
            usual.setdefault(bucket(volume(s)), []).append((s.id, _seconds(s, now)))
    slow: list[tuple[SessionRecord, float, float]] = []
    for s in sessions:
        if s.status not in (SyncState.COMPLETED, SyncState.ENRICHING, SyncState.STORING):
            continue  # failed, or its size is not known yet (still listing Strava)
        if s.completed_at is not None and now - s.completed_at > look_back:
            continue
        history = [took for sid, took in usual.get(bucket(volume(s)), []) if sid != s.id]
        if len(history) < min_history:
            continue
        median = statistics.median(history)
        took = _seconds(s, now)
        if median > 0 and took > factor * median:
            slow.append((s, took, median))
    if not slow:
        return Alert(
            SLOW_SYNCS,
            False,
            f"no sync in the last {_span(look_back)} took over {factor:g}x the usual duration "
            "for its size",
            {"buckets_with_history": sum(len(v) >= min_history for v in usual.values())},
        )
    s, took, median = max(slow, key=lambda x: x[1] / x[2])
    state = "running for" if s.completed_at is None else "took"
    return Alert(
        SLOW_SYNCS,
        True,
        f"{len(slow)} slow sync(s): the worst, run {s.dagster_run_id} of user {s.user_id} "
        f"({volume(s):,} activities), {state} {took:,.0f} s = {took / median:.1f}x the usual "
        f"{median:,.0f} s for its size",
        {
            "slow_syncs": len(slow),
            "worst_run": s.dagster_run_id,
            "worst_seconds": round(took),
            "usual_seconds": round(median),
            "ratio": round(took / median, 2),
        },
    )


def _share(used: float, limit: float) -> float:
    return used / limit if limit else 0.0


def api_quota(
    strava_usage: Mapping[str, int] | None,
    store: Store,
    weather_limits: Mapping[str, int],
    *,
    threshold: float = 0.8,
    now: datetime | None = None,
    strava_skipped: str | None = None,
) -> Alert:
    """Fires when Strava's app-wide usage (its rate-limit headers, as the shared budget last saw
    them) or the weather calls charged in the last hour or day pass `threshold` of a limit.

    Weather usage is summed from `sync_step_metrics` (every process's runs), so it lags by
    the steps still running; the per-minute window is left to the clients' own budget.
    `strava_usage` None (no Strava application configured, `strava_skipped` says why): the
    weather half is evaluated alone and the figure says what was skipped.
    """
    now = now or datetime.now(UTC)
    shares: dict[str, tuple[float, float]] = {}
    if strava_usage is not None:
        for name, used, limit in (
            ("strava read 15 min", "read_usage_15min", "read_limit_15min"),
            ("strava read daily", "read_usage_daily", "read_limit_daily"),
            ("strava overall 15 min", "usage_15min", "limit_15min"),
            ("strava overall daily", "usage_daily", "limit_daily"),
        ):
            shares[name] = (strava_usage.get(used, 0), strava_usage.get(limit, 0))
    day = store.step_metrics(since=now - timedelta(days=1), api="weather")
    hour_start = now - timedelta(hours=1)
    shares["weather hourly"] = (
        sum(m.api_quota_used for m in day if m.recorded_at and m.recorded_at >= hour_start),
        weather_limits.get("hourly", 0),
    )
    shares["weather daily"] = (sum(m.api_quota_used for m in day), weather_limits.get("daily", 0))
    worst = max(shares, key=lambda k: _share(*shares[k]))
    used, limit = shares[worst]
    share = _share(used, limit)
    over = [k for k, v in shares.items() if _share(*v) > threshold]
    head = f"{', '.join(over)} past {threshold:.0%}" if over else f"all under {threshold:.0%}"
    figure = f"{head}; highest: {worst} {used:,.0f}/{limit:,} ({share:.0%})"
    metadata: dict[str, Any] = {
        k.replace(" ", "_"): round(_share(*v), 4) for k, v in shares.items()
    }
    if strava_usage is None:
        why = strava_skipped or "no Strava usage known"
        figure += f"; Strava not evaluated: {why}"
        metadata["strava_skipped"] = why
    return Alert(API_QUOTA, bool(over), figure, metadata)


def db_pool(
    store: Store,
    server: Mapping[str, int] | None,
    *,
    threshold: float = 0.8,
    slow_wait_ms: float = 1_000.0,
    look_back: timedelta = timedelta(minutes=30),
    now: datetime | None = None,
) -> Alert:
    """Fires when a recent step timed out waiting for a pooled connection or waited longer
    than `slow_wait_ms` in all, or when the server's connections in use pass `threshold` of
    what it allows (`server`: `Store.connection_usage`, None on SQLite)."""
    now = now or datetime.now(UTC)
    steps = [m for m in store.step_metrics(since=now - look_back) if m.db_pool_max]
    timeouts = sum(m.db_pool_timeouts for m in steps)
    waited = [m for m in steps if m.db_pool_wait_ms > slow_wait_ms]
    parts, metadata = [], {"pool_timeouts": timeouts, "steps_waiting": len(waited)}
    fired = False
    if timeouts or waited:
        fired = True
        worst = max(steps, key=lambda m: m.db_pool_wait_ms)
        parts.append(
            f"{timeouts} pooled-connection timeout(s) and {len(waited)} step(s) waiting over "
            f"{slow_wait_ms:,.0f} ms in the last {_span(look_back)} (worst: run "
            f"{worst.dagster_run_id} waited {worst.db_pool_wait_ms:,.0f} ms with a pool of "
            f"{worst.db_pool_max})"
        )
    if server:
        used, allowed = server["in_use"], server["allowed"]
        metadata |= {"server_connections": used, "server_connections_allowed": allowed}
        share = _share(used, allowed)
        if share > threshold:
            fired = True
            parts.append(
                f"{used} of {allowed} server connections in use ({share:.0%}, alert above "
                f"{threshold:.0%})"
            )
        elif not parts:
            parts.append(f"{used} of {allowed} server connections in use ({share:.0%})")
    if not parts:
        parts.append(f"no pooled-connection wait or timeout in the last {_span(look_back)}")
    return Alert(DB_POOL, fired, "; ".join(parts), metadata)
