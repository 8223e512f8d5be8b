"""Weather benchmark: requests per 1,000 activities, batched and cached, against one request
per activity (the seed's approach), and what they cost in Open-Meteo's weighted calls.

Synthetic athletes of the sandbox (home bases with 3 km of scatter, several years of history)
are enriched with the real `OpenMeteoProvider` against the Open-Meteo sandbox with --latency
seconds per request, through a fresh SQLite cache; then enriched again (the cache). Prints
medians of --repeat runs and asserts nothing (this machine is shared and noisy).

    python bench/bench_weather.py [--sizes 1000,5000,10000] [--latency 0.1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sync_assets_sandbox import (
    SandboxServer,
    StravaSandbox,
    WeatherLimits,
    WeatherSandbox,
    generate_activities,
)

from sync_assets.core.clients.weather import (
    OPEN_METEO_VARIABLES,
    OpenMeteoProvider,
    open_meteo_weight,
)
from sync_assets.core.enrichment.weather import cell_of, hour_of, resolve_weather
from sync_assets.core.storage import close_stores, open_store


def run_once(size: int, latency: float, seed: int) -> dict[str, float]:
    now = datetime.now(UTC)
    acts = generate_activities(seed, 10_000_001, size, end=now)
    keys = {
        (cell_of(*a["start_latlng"]), hour_of(datetime.fromisoformat(a["start_date"])))
        for a in acts
        if a["start_latlng"]
    }
    located = sum(1 for a in acts if a["start_latlng"])
    strava = StravaSandbox(seed=seed)
    weather = WeatherSandbox(
        seed=seed,
        clock=strava.now,
        limits=WeatherLimits(minutely=100_000, hourly=1_000_000, daily=10_000_000),
    )
    weather.set_faults(latency_seconds=latency)
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(strava, weather=weather) as server:
        store = open_store(None, Path(tmp))
        provider = OpenMeteoProvider(
            server.weather_url, minutely=100_000, hourly=1_000_000, daily=10_000_000
        )
        started = time.perf_counter()
        found, statuses, report = resolve_weather(keys, provider, store, now=now)
        seconds = time.perf_counter() - started
        first_requests = weather.request_count("archive")
        weight = weather.usage()["total_weight"]
        started = time.perf_counter()
        _, _, cached = resolve_weather(keys, provider, store, now=now)
        cached_seconds = time.perf_counter() - started
        second_requests = weather.request_count("archive") - first_requests
        provider.close()
        close_stores()
    return {
        "activities": size,
        "located": located,
        "hours": len(keys),
        "cells": len({k[0] for k in keys}),
        "requests": first_requests,
        "weight": weight,
        "seconds": seconds,
        "enriched": len(found),
        "pending": report.pending,
        "second_requests": second_requests,
        "second_seconds": cached_seconds,
        "per_activity_weight": located * open_meteo_weight(len(OPEN_METEO_VARIABLES), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    print(
        f"weather enrichment, Open-Meteo sandbox with {args.latency * 1000:.0f} ms per request, "
        f"medians of {args.repeat} runs"
    )
    header = (
        f"{'activities':>10} {'cells':>5} {'requests':>8} {'per 1k':>7} {'weight':>7} "
        f"{'one/activity':>12} {'weight':>7} {'seconds':>7} {'act/s':>7} {'cached run':>10} "
        f"{'seconds':>7}"
    )
    print(header)
    for size in (int(s) for s in args.sizes.split(",")):
        runs = [run_once(size, args.latency, args.seed + i) for i in range(args.repeat)]

        def med(key: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(r[key] for r in runs)

        print(
            f"{size:>10} {med('cells'):>5.0f} {med('requests'):>8.0f} "
            f"{med('requests') * 1000 / size:>7.1f} {med('weight'):>7.1f} "
            f"{med('located'):>12.0f} {med('per_activity_weight'):>7.0f} "
            f"{med('seconds'):>7.2f} {size / med('seconds'):>7.0f} "
            f"{med('second_requests'):>10.0f} {med('second_seconds'):>7.2f}"
        )
    print(
        "requests: HTTP requests of the batched plan (many cells and date ranges per request); "
        "weight: Open-Meteo's count of calls (its limits: 600/min, 5,000/h, 10,000/day); "
        "one/activity: requests the seed's one-call-per-activity approach would make; "
        "cached run: requests when the same activities are enriched again (only hours the "
        "archive has not published yet are asked again)."
    )


if __name__ == "__main__":
    main()
