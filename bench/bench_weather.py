"""Weather benchmark: what enriching a whole history writes to the cache, costs in CPU, and
spends of Open-Meteo's weighted calls against the least any plan could spend.

Synthetic athletes of the sandbox (home bases with 3 km of scatter, --years of history, or the
sandbox's default of 150 activities a year) are enriched with the real `OpenMeteoProvider`
against the Open-Meteo sandbox (--latency seconds per request) through a fresh cache on each
backend (SQLite in a temporary folder; PostgreSQL in a throwaway database of the machine's
server, or SYNC_ASSETS_TEST_PG), then enriched again (the cache). Prints medians of --repeat
runs and asserts nothing (this machine is shared and noisy).

What is printed, per backend and size:

* `hours`: distinct (cell, UTC hour) the activities need; `cell-days`: distinct (cell, UTC day)
  among them up to today (what a plan must cover).
* `rows`: cache rows written (the sum of what `weather_store` reports, i.e. rows inserted or
  updated), `MB` the cache table's size afterwards (PostgreSQL: `pg_total_relation_size`;
  SQLite: its pages in `dbstat`), `store s`: wall seconds spent in `weather_store`.
* `cpu s`: CPU seconds of the weather step outside HTTP and budget waits: the CPU time of the
  thread running `resolve_weather` (`time.thread_time`, so the in-process sandbox server's
  threads are not counted) minus that thread's CPU time inside the HTTP client's `request`
  (sending, waiting, reading bytes). Budget and 429 waits are sleeps and cost no CPU. What
  remains: planning, JSON decoding and parsing of the answers, cache lookups and writes on the
  client side (SQLite's work is in-process, PostgreSQL's server time is not counted).
  `wall s`: the step's wall time, `http s`: wall time inside HTTP requests.
* `weight`: Open-Meteo's count of calls for the requests served (the sandbox's accounting),
  `bound`: the least weight any plan could spend on the needed cell-days (`min_weight`), and
  their ratio. `cached`: requests of the second enrichment of the same activities.

    python bench/bench_weather.py [--sizes 1000,5000] [--latency 0.02] [--repeat 3]
        [--backends sqlite,postgres] [--years 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sync_assets_sandbox import (  # noqa: E402
    SandboxServer,
    StravaSandbox,
    WeatherLimits,
    WeatherSandbox,
    generate_activities,
)

from sync_assets.core.clients.weather import OPEN_METEO_VARIABLES, OpenMeteoProvider  # noqa: E402
from sync_assets.core.enrichment.weather import cell_of, hour_of, resolve_weather  # noqa: E402
from sync_assets.core.migrations import plain_postgres_compat_sql  # noqa: E402
from sync_assets.core.storage.crypto import TokenCipher  # noqa: E402
from sync_assets.core.storage.postgres import PostgresStore  # noqa: E402
from sync_assets.core.storage.sqlite import SqliteStore  # noqa: E402
from tests.pg import temporary_database  # noqa: E402


def min_weight(days: Iterable[date], n_variables: int) -> float:
    """The least weight that covers these days of one location with contiguous date ranges.

    Dynamic programming over the sorted days, written plainly (and apart from the planner's
    own `cheapest_ranges`, so that the bound does not take the planner's word): best[j] is the
    least weight covering the first j days, the minimum over every first day i of the last
    range of best[i] + weight(range i..j). Weights are counted times 140, in integers:
    max(1, v/10, v/10 * days/14) = max(140, 14 v, v days) / 140. A range's weight only grows
    as it starts earlier, so the scan of i stops once that alone exceeds the best so far."""
    ordinals = sorted({d.toordinal() for d in days})
    v = n_variables
    best = [0]
    for j, last in enumerate(ordinals):
        least = None
        for i in range(j, -1, -1):
            weight = max(140, 14 * v, v * (last - ordinals[i] + 1))
            if least is not None and weight >= least:
                break
            total = best[i] + weight
            if least is None or total < least:
                least = total
        best.append(least)
    return best[-1] / 140


class TimedClient(httpx.Client):
    """An httpx client that adds up the wall and CPU time its requests take."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.wall = 0.0
        self.cpu = 0.0

    def request(self, *args: Any, **kw: Any) -> httpx.Response:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return super().request(*args, **kw)
        finally:
            self.wall += time.perf_counter() - wall
            self.cpu += time.thread_time() - cpu


def table_bytes(store: Any, backend: str) -> int | None:
    if backend == "postgres":
        with store._tx() as conn:
            return conn.execute("select pg_total_relation_size('public.weather_cache')").fetchone()[
                0
            ]
    with store._tx() as conn:
        try:
            row = conn.execute(
                "SELECT sum(pgsize) FROM dbstat WHERE name = 'weather_cache' "
                "OR name LIKE 'sqlite_autoindex_weather_cache%'"
            ).fetchone()
        except Exception:  # noqa: BLE001 - dbstat is optional in SQLite builds
            return None
    return row[0]


def enrich(store: Any, backend: str, size: int, args: argparse.Namespace, seed: int) -> dict:
    now = datetime.now(UTC)
    acts = generate_activities(seed, 10_000_001, size, end=now, years=args.years)
    keys = {
        (cell_of(*a["start_latlng"]), hour_of(datetime.fromisoformat(a["start_date"])))
        for a in acts
        if a["start_latlng"]
    }
    cell_days: dict[tuple[float, float], set[date]] = {}
    for cell, hour in keys:
        if hour.date() <= now.date():
            cell_days.setdefault(cell, set()).add(hour.date())
    n = len(OPEN_METEO_VARIABLES)
    bound = sum(min_weight(days, n) for days in cell_days.values())
    strava = StravaSandbox(seed=seed)
    weather = WeatherSandbox(
        seed=seed,
        clock=strava.now,
        limits=WeatherLimits(minutely=100_000, hourly=1_000_000, daily=10_000_000),
    )
    weather.set_faults(latency_seconds=args.latency)
    written, store_seconds = 0, 0.0
    real_store = store.weather_store

    def timed_store(provider: str, rows: Any) -> int:
        nonlocal written, store_seconds
        started = time.perf_counter()
        count = real_store(provider, rows)
        store_seconds += time.perf_counter() - started
        written += count
        return count

    store.weather_store = timed_store
    with SandboxServer(strava, weather=weather) as server:
        http = TimedClient(timeout=30.0)
        provider = OpenMeteoProvider(
            server.weather_url, minutely=100_000, hourly=1_000_000, daily=10_000_000, http=http
        )
        wall, cpu = time.perf_counter(), time.thread_time()
        found, _, report = resolve_weather(keys, provider, store, now=now)
        cpu = time.thread_time() - cpu
        wall = time.perf_counter() - wall
        requests = weather.request_count("archive")
        weight = weather.usage()["total_weight"]
        again, _, cached = resolve_weather(keys, provider, store, now=now)
        assert again == found, "the cache answered other weather than the requests brought"
        provider.close()
    return {
        "hours": len(keys),
        "cell_days": sum(len(d) for d in cell_days.values()),
        "cells": len(cell_days),
        "enriched": len(found),
        "requests": requests,
        "weight": weight,
        "bound": bound,
        "ratio": weight / bound,
        "rows": written,
        "bytes": table_bytes(store, backend) or 0,
        "store_seconds": store_seconds,
        "cpu": cpu - http.cpu,
        "wall": wall,
        "http": http.wall,
        "cached_requests": cached.requests_planned,
    }


def run_once(backend: str, size: int, args: argparse.Namespace, seed: int) -> dict:
    cipher = TokenCipher([Fernet.generate_key().decode()])
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            store = SqliteStore(Path(tmp) / "bench.db", cipher)
            try:
                return enrich(store, backend, size, args, seed)
            finally:
                store.close()
    with temporary_database("sa_bench") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(plain_postgres_compat_sql())
        store = PostgresStore(url, cipher)
        try:
            store.migrate()
            return enrich(store, backend, size, args, seed)
        finally:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--years", type=float, default=None)
    args = parser.parse_args()
    print(
        f"weather enrichment, Open-Meteo sandbox with {args.latency * 1000:.0f} ms per request, "
        f"a fresh cache, medians of {args.repeat} runs (PostgreSQL: "
        f"{os.environ.get('SYNC_ASSETS_TEST_PG', 'postgresql://postgres@127.0.0.1:5432')})"
    )
    print(
        f"{'backend':>8} {'acts':>6} {'hours':>6} {'cells':>5} {'cell-days':>9} {'rows':>8} "
        f"{'MB':>6} {'store s':>7} {'cpu s':>6} {'wall s':>6} {'http s':>6} {'reqs':>5} "
        f"{'weight':>7} {'bound':>7} {'w/bound':>7} {'cached':>6}"
    )
    for backend in args.backends.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            runs = [run_once(backend, size, args, args.seed + i) for i in range(args.repeat)]
            m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(
                f"{backend:>8} {size:>6} {m['hours']:>6.0f} {m['cells']:>5.0f} "
                f"{m['cell_days']:>9.0f} {m['rows']:>8.0f} {m['bytes'] / 1e6:>6.1f} "
                f"{m['store_seconds']:>7.2f} {m['cpu']:>6.2f} {m['wall']:>6.2f} "
                f"{m['http']:>6.2f} {m['requests']:>5.0f} {m['weight']:>7.1f} "
                f"{m['bound']:>7.1f} {m['ratio']:>7.3f} "
                f"{m['cached_requests']:>6.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
