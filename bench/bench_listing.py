"""Listing benchmark: list requests against the minimum in every order Strava could list in.

Strava documents no order for `GET /athlete/activities`; the sandbox plays each possibility
(`--list-order`). For each order and history size this runs the real fetch (`fetch_span`,
keyset pagination that reads the order from the pages) and prints the list requests made
against the minimum `floor(N/200) + 1`, then a resume: Strava goes down after the third page,
the fetch fails, and a second fetch resumes from the staged pages (the embedded SQLite store).
Every activity is checked once; nothing is timed (request counts do not depend on the
machine).

    python bench/bench_listing.py [--sizes 0,1,200,201,1337,5000] [--resume-size 1000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import sandbox_client
from sandbox_client import connect, whole_history
from sync_assets_sandbox import RateLimits, SandboxServer, StravaSandbox

from sync_assets.core.clients.strava import StravaClient
from sync_assets.core.errors import SyncError
from sync_assets.core.ingest import CollectedPartitions, fetch_span, minimum_list_calls
from sync_assets.core.storage import Store, close_stores, open_store

ORDERS = ("oldest-first-with-after", "newest-first-always", "newest-first-when-bounded")
LISTS = "/api/v3/athlete/activities"
UNLIMITED = RateLimits(
    read_15min=100_000, read_daily=1_000_000, overall_15min=100_000, overall_daily=1_000_000
)


def answered(sandbox: StravaSandbox) -> int:
    """List requests Strava answered with a page (the one the outage refused is not one)."""
    return sum(1 for r in list(sandbox.requests) if r["path"] == LISTS and r["status"] == 200)


def _client(sandbox: StravaSandbox, server: SandboxServer, store: Store) -> StravaClient:
    return sandbox_client.client(sandbox, server, store, max_retries=0)


def listing(order: str, size: int, *, fail_after_page: int | None = None) -> dict[str, int]:
    """One whole-history fetch (and, with `fail_after_page`, a failure there and a resume)."""
    sandbox = StravaSandbox(seed=17, limits=UNLIMITED, list_order=order)
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(sandbox) as server:
        athlete = sandbox.add_athlete(n_activities=size, seed=17)
        store = open_store(None, Path(tmp))
        connect(store, athlete)
        span = whole_history(sandbox)
        first = 0
        if fail_after_page is not None:
            sandbox.set_faults(outage_after_requests=fail_after_page)
            try:
                with _client(sandbox, server, store) as client:
                    fetch_span(client, span, CollectedPartitions(), staging=store)
                raise AssertionError("the outage did not stop the fetch")
            except SyncError:
                pass
            first = answered(sandbox)
            sandbox.clear_faults()
        with _client(sandbox, server, store) as client:
            sink = CollectedPartitions()
            resumed = fetch_span(client, span, sink, staging=store).resumed
        close_stores()
        got = sorted(
            i
            for p in sink.partitions.values()
            for i in p.activities.column("strava_id").to_pylist()
        )
        assert got == sorted(a["id"] for a in sandbox.activities(athlete.athlete_id)), order
        total = answered(sandbox)
        return {
            "requests": total,
            "minimum": minimum_list_calls(size),
            "before_failure": first,
            "after_resume": total - first,
            "resumed": resumed,
            "pages_fetched_twice": total - minimum_list_calls(size),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="0,1,200,201,1337,5000")
    parser.add_argument("--resume-size", type=int, default=1000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'order':<26} " + " ".join(f"{n:>11}" for n in sizes) + "   (requests/minimum)")
    for order in ORDERS:
        cells = []
        for size in sizes:
            r = listing(order, size)
            cells.append(f"{r['requests']}/{r['minimum']}")
        print(f"{order:<26} " + " ".join(f"{c:>11}" for c in cells))
    n = args.resume_size
    print(f"\nresume after a failure at page 3 ({n} activities, minimum {minimum_list_calls(n)}):")
    for order in ORDERS:
        r = listing(order, n, fail_after_page=3)
        print(
            f"{order:<26} {r['before_failure']} pages before the failure, "
            f"{r['after_resume']} after it ({r['resumed']} activities from the checkpoint), "
            f"{r['pages_fetched_twice']} page(s) fetched twice"
        )


if __name__ == "__main__":
    main()
