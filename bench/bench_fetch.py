"""Fetch benchmark: Strava requests per 1,000 activities against the minimum, throughput, and
peak memory of a whole-history fetch as `raw_strava_activities` runs it.

Runs the real fetch (`fetch_partitions`: keyset pagination, validation, Arrow tables, every
page staged in the embedded SQLite store, a `sync_sessions` row checkpointed per page, each
month written as Parquet as soon as the listing is past it, through the Parquet IO manager's
sink into a temporary folder) against the sandbox with 100 ms of latency per request, as a
distant API would have. Prints medians of --repeat runs, and the peak Python memory of the fetch
(tracemalloc) from one extra run per size: `peak_mib` per size, then the ratio of the largest
size's peak to the smallest's (flat memory: 10,000 activities at most 1.5x the peak for 1,000).
A small untraced fetch runs first, so that imports and the store's migrations, paid once per
process, are in no size's peak. Asserts nothing (this machine is shared and noisy). The sandbox
runs in the same process, so its own CPU time (and its per-request allocations) are included:
figures are a floor for the client, not for a remote Strava.

    python bench/bench_fetch.py [--sizes 1000,10000] [--latency 0.1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import sandbox_client
from dagster import AssetKey
from sandbox_client import connect, whole_history
from sync_assets_sandbox import RateLimits, SandboxServer, StravaSandbox
from upath import UPath

from sync_assets.core.ingest import fetch_partitions, minimum_list_calls
from sync_assets.core.sessions import SessionTracker
from sync_assets.core.storage import close_stores, open_store
from sync_assets.resources.parquet_io import ParquetPartitionSink, PartitionedParquetIOManager

ASSET = AssetKey("raw_strava_activities")


def run_once(
    size: int, latency: float, seed: int, *, trace_memory: bool = False
) -> dict[str, float]:
    """One fetch; with `trace_memory`, tracemalloc measures the peak (and slows it 3-5x)."""
    sandbox = StravaSandbox(
        seed=seed,
        limits=RateLimits(
            read_15min=100_000, read_daily=1_000_000, overall_15min=100_000, overall_daily=1_000_000
        ),
    )
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(sandbox) as server:
        athlete = sandbox.add_athlete(n_activities=size, seed=seed)
        store = open_store(None, Path(tmp))
        connect(store, athlete)
        sandbox.set_faults(latency_seconds=latency)
        span = whole_history(sandbox)
        client = sandbox_client.client(sandbox, server, store)
        sink = ParquetPartitionSink(PartitionedParquetIOManager(UPath(tmp) / "parquet"), ASSET)
        run_id = str(uuid.uuid4())

        def tracker(user: str, start: object, end: object) -> SessionTracker:
            return SessionTracker(
                store, run_id=run_id, user_id=user, time_range_start=start, time_range_end=end
            )

        if trace_memory:
            tracemalloc.start()
        started = time.perf_counter()
        report = fetch_partitions(
            lambda _user: client, span.partition_keys(), tracker, staging=store, sink=sink
        )
        seconds = time.perf_counter() - started
        peak = 0
        if trace_memory:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        close_stores()
        assert report.activities + report.quarantined == size, (report.activities, size)
        assert len(sink.outputs) == len(span.months)
        return {
            "requests": client.stats.http_requests,
            "minimum": minimum_list_calls(size),
            "seconds": seconds,
            "activities_per_s": size / seconds,
            "peak_mib": peak / 2**20,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"sandbox latency {args.latency * 1000:.0f} ms per request; medians of {args.repeat} runs"
    )
    run_once(200, 0.0, seed=7)  # warm-up: imports, migrations, first-call caches
    print(
        f"{'activities':>10} {'requests':>9} {'minimum':>8} {'req/1k act':>11} "
        f"{'naive req':>10} {'act/s':>8} {'seconds':>8} {'peak_mib':>9}"
    )
    peaks: dict[int, float] = {}
    for size in sizes:
        runs = [run_once(size, args.latency, seed=11 + i) for i in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        # Peak memory from a separate traced run: tracing would distort the timings above.
        med["peak_mib"] = run_once(size, args.latency, seed=11, trace_memory=True)["peak_mib"]
        peaks[size] = med["peak_mib"]
        # "naive": the default per_page=30 with page numbers, one request per 30 activities.
        naive = size // 30 + 1
        print(
            f"{size:>10} {med['requests']:>9.0f} {med['minimum']:>8.0f} "
            f"{1000 * med['requests'] / max(size, 1):>11.2f} {naive:>10} "
            f"{med['activities_per_s']:>8.0f} {med['seconds']:>8.2f} {med['peak_mib']:>9.1f}"
        )
    small, large = min(peaks), max(peaks)
    print(
        " ".join(f"peak_mib[{n}]={p:.1f}" for n, p in peaks.items())
        + f" ratio[{large}/{small}]={peaks[large] / peaks[small]:.2f}"
    )


if __name__ == "__main__":
    main()
