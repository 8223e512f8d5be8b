"""Step metrics: what each asset step of a sync spent, kept in `sync_step_metrics`.

The assets record one row per step (also when the step fails: `step`), so the metrics views
(`sync_api_health`, `sync_write_performance`, ...) and the alerts read the same figures the
materialization metadata shows. `phase_table` turns a sync's rows into the markdown table of
phase timings that `runs_table` shows in the Dagster UI.
"""

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from sync_assets.core.clients.http import LatencyStats
from sync_assets.core.sessions import session_key
from sync_assets.core.storage.base import StepMetrics, Store

PHASE_NAMES = {
    "raw_strava_activities": "fetch (Strava)",
    "weather_enriched_activities": "enrich (places, weather)",
    "runs_table": "store (runs)",
}


def sync_id(run: Any) -> str:
    """The sync a run belongs to: its root run (re-executions share it), as in `sync_sessions`."""
    return session_key(run.tags, run.run_id)


def api_fields(latency: LatencyStats) -> dict[str, Any]:
    p95 = latency.percentile_ms(0.95)
    return {
        "api_requests": latency.requests,
        "api_latency_ms_total": round(latency.total_ms, 3),
        "api_latency_ms_max": round(latency.max_ms, 3),
        "api_latency_ms_p95": None if p95 is None else round(p95, 3),
    }


def pool_fields(pool: Mapping[str, int] | None) -> dict[str, Any]:
    """psycopg_pool's counters since the step began (`Store.take_pool_stats`); none on SQLite."""
    if not pool:
        return {}
    return {
        "db_pool_max": pool.get("pool_max"),
        "db_pool_waits": pool.get("requests_queued", 0),
        "db_pool_wait_ms": float(pool.get("requests_wait_ms", 0)),
        "db_pool_timeouts": pool.get("requests_errors", 0),
    }


def record(store: Store, run: Any, step: str, log: Any, **fields: Any) -> StepMetrics:
    """Store one step's metrics; a failed metrics write is logged and does not fail the step
    it describes (the sync matters more than its statistics)."""
    metrics = StepMetrics(sync_id=sync_id(run), dagster_run_id=run.run_id, step=step, **fields)
    try:
        store.record_step_metrics(metrics)
    except Exception as exc:  # noqa: BLE001
        log.warning(f"the metrics of step {step} were not recorded: {type(exc).__name__}: {exc}")
    return metrics


class Step:
    """A context manager that records one step's row when the block ends, also when it raises
    (`record_on`: the exceptions after which it still does; others leave no row).

    The row holds the fields given here and by `update`, then those `collect()` returns when
    the block ends (what a step spent up to its failure, read from its outcome; None: the step
    never got to its work, and no row is written). `seconds` is the block's duration unless
    the fields say otherwise. With `pool`, the store's connection-pool counters are reset on
    entry and the step's waits recorded (`pool_fields`).
    """

    def __init__(
        self,
        store: Store,
        run: Any,
        name: str,
        log: Any,
        *,
        collect: Callable[[], Mapping[str, Any] | None] | None = None,
        pool: bool = False,
        record_on: type[BaseException] | tuple[type[BaseException], ...] = BaseException,
        **fields: Any,
    ) -> None:
        self.store, self.run, self.name, self.log = store, run, name, log
        self.collect, self.pool, self.record_on = collect, pool, record_on
        self.fields: dict[str, Any] = dict(fields)
        self.metrics: StepMetrics | None = None  # the row, once recorded
        self._started = 0.0

    def update(self, **fields: Any) -> None:
        self.fields.update(fields)

    def __enter__(self) -> "Step":
        if self.pool:
            self.store.take_pool_stats()  # from here on, count this step's pool waits
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and not issubclass(exc_type, self.record_on):
            return
        fields = {"seconds": round(time.perf_counter() - self._started, 3), **self.fields}
        if self.collect is not None:
            collected = self.collect()
            if collected is None:
                return
            fields.update(collected)
        if self.pool:
            fields.update(pool_fields(self.store.take_pool_stats()))
        self.metrics = record(self.store, self.run, self.name, self.log, **fields)


# `with metrics.step(store, context.run, "runs_table", context.log) as m: ...; m.update(...)`
step = Step


def sync_steps(
    store: Store, run: Any, *, lookback: timedelta = timedelta(days=7)
) -> list[StepMetrics]:
    """The steps recorded so far for the run's sync (its root run and re-executions)."""
    return store.step_metrics(since=datetime.now(UTC) - lookback, sync_id=sync_id(run))


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "-"


def phase_table(steps: Iterable[StepMetrics]) -> str:
    """Markdown: one line per step of the sync, in the order they ran, and the total."""
    lines = [
        "| phase | seconds | activities | per s | requests | latency ms (avg / p95) | rows |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    total = 0.0
    for m in steps:
        total += m.seconds
        latency = "-"
        if m.api_requests:
            avg = m.api_latency_ms_total / m.api_requests
            p95 = f"{m.api_latency_ms_p95:.0f}" if m.api_latency_ms_p95 is not None else "-"
            latency = f"{avg:.0f} / {p95}"
        lines.append(
            f"| {PHASE_NAMES.get(m.step, m.step)} | {m.seconds:.2f} | {m.activities:,} "
            f"| {_rate(m.activities, m.seconds)} | {m.api_requests:,} | {latency} "
            f"| {m.rows_written:,} |"
        )
    lines.append(f"| **total** | **{total:.2f}** | | | | | |")
    return "\n".join(lines)
