"""Fetch benchmark: Strava requests per 1,000 activities against the minimum, and throughput.

Runs the real client (keyset pagination, validation, Arrow tables: `fetch_span`) against the
sandbox with 100 ms of latency per request, as a distant API would have. Prints medians of
--repeat runs (peak Python memory of the fetch from one extra run under tracemalloc); asserts
nothing (this machine is shared and noisy). The sandbox runs in the same process, so its own
CPU time is included: figures are a floor for the client, not for a remote Strava.

    python bench/bench_fetch.py [--sizes 1000,5000] [--latency 0.1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import sandbox_client
from sandbox_client import connect, whole_history
from sync_assets_sandbox import RateLimits, SandboxServer, StravaSandbox

from sync_assets.core.ingest import fetch_span, minimum_list_calls
from sync_assets.core.storage import close_stores, open_store


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
        if trace_memory:
            tracemalloc.start()
        started = time.perf_counter()
        with client:
            data, received, _ = fetch_span(client, span)
        seconds = time.perf_counter() - started
        peak = 0
        if trace_memory:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        close_stores()
        rows = sum(p.activities.num_rows + p.quarantine.num_rows for p in data.values())
        assert rows == size, (rows, size)
        return {
            "requests": client.stats.http_requests,
            "minimum": minimum_list_calls(size),
            "seconds": seconds,
            "activities_per_s": size / seconds,
            "peak_mib": peak / 2**20,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"sandbox latency {args.latency * 1000:.0f} ms per request; medians of {args.repeat} runs"
    )
    print(
        f"{'activities':>10} {'requests':>9} {'minimum':>8} {'req/1k act':>11} "
        f"{'naive req':>10} {'act/s':>8} {'seconds':>8} {'peak MiB':>9}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        runs = [run_once(size, args.latency, seed=11 + i) for i in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        # Peak memory from a separate traced run: tracing would distort the timings above.
        med["peak_mib"] = run_once(size, args.latency, seed=11, trace_memory=True)["peak_mib"]
        # "naive": the default per_page=30 with page numbers, one request per 30 activities.
        naive = size // 30 + 1
        print(
            f"{size:>10} {med['requests']:>9.0f} {med['minimum']:>8.0f} "
            f"{1000 * med['requests'] / max(size, 1):>11.2f} {naive:>10} "
            f"{med['activities_per_s']:>8.0f} {med['seconds']:>8.2f} {med['peak_mib']:>9.1f}"
        )


if __name__ == "__main__":
    main()
