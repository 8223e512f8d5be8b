"""The webhook receiver under a burst, served as deployed: `sync-assets webhook` in a process of
its own on a fresh PostgreSQL database, and 32 client threads in this process posting 2,000
push events at once (one keep-alive connection each). Prints events/s, p50 and p99 latency,
the answers, and that every 200 is a stored row (once), per pass and as medians.

`--cli` picks the `sync-assets` executable, so that another checkout's receiver (an older
one, say) can be measured on the same machine in turn with this one: give several, and each
pass runs them in turn (the order rotates).

    python bench/bench_webhooks.py [--events 2000] [--clients 32] [--repeat 3] [--cli PATH ...]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sync_assets.core.migrations import plain_postgres_compat_sql  # noqa: E402
from tests.pg import temporary_database  # noqa: E402

TOKEN = "bench-verify-token"
EVENT = {
    "aspect_type": "create",
    "event_time": 1_790_000_000,
    "object_type": "activity",
    "owner_id": 4242,
    "subscription_id": 7,
    "updates": {},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(cli: str, url: str, home: Path) -> tuple[subprocess.Popen, str]:
    """`sync-assets webhook` on a free port; its URL once it says it listens."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SYNC_ASSETS_HOME": str(home),
        "STRAVA_WEBHOOK_VERIFY_TOKEN": TOKEN,
    }
    for name in ("SUPABASE_JWT_SECRET", "STRAVA_WEBHOOK_SUBSCRIPTION_ID"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [cli, "webhook", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if "receiver on" not in line:
        proc.kill()
        raise SystemExit(f"{cli} webhook did not start: {line}{proc.stderr.read()[-2000:]}")
    return proc, line.split(" on ", 1)[1].split()[0]


def burst(url: str, events: list[dict], clients: int) -> tuple[list[tuple[int, float]], float]:
    answers: list[tuple[int, float]] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    def client(chunk: list[dict]) -> None:
        start.wait()
        for ev in chunk:
            t0 = time.perf_counter()
            status = http.post(url, content=json.dumps(ev)).status_code
            took = time.perf_counter() - t0
            with lock:
                answers.append((status, took))

    with httpx.Client(timeout=30, limits=limits) as http, ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, events[i::clients]) for i in range(clients)]
        start.wait()
        t0 = time.perf_counter()
        for f in futures:
            f.result()
        elapsed = time.perf_counter() - t0
    return answers, elapsed


def one(cli: str, args: argparse.Namespace, pass_no: int) -> dict[str, float]:
    events = [{**EVENT, "object_id": 100_000 + i} for i in range(args.events)]
    with temporary_database("sa_bench") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(plain_postgres_compat_sql())
        home = Path(f"/tmp/bench_webhooks_{os.getpid()}_{pass_no}")
        proc, hook_url = serve(cli, url, home)
        try:
            answers, elapsed = burst(hook_url, events, args.clients)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)
        with psycopg.connect(url) as conn:
            stored = Counter(
                r[0] for r in conn.execute("select object_id from public.strava_webhook_events")
            )
    statuses = Counter(status for status, _ in answers)
    latencies = sorted(took for _, took in answers)
    result = {
        "events_per_s": len(events) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000,
        "ok": statuses[200],
        "refused": len(answers) - statuses[200],
        "stored": sum(stored.values()),
        "twice": sum(1 for n in stored.values() if n > 1),
    }
    # Every 200 is a stored row: at least as many rows as 200s, none twice.
    assert result["stored"] >= statuses[200] and result["twice"] == 0, result
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    default_cli = str(Path(sys.executable).with_name("sync-assets"))
    parser.add_argument("--cli", nargs="+", default=[default_cli])
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {cli: [] for cli in args.cli}
    for n in range(args.repeat):
        order = args.cli[n % len(args.cli) :] + args.cli[: n % len(args.cli)]
        for cli in order:
            r = one(cli, args, n)
            results[cli].append(r)
            print(
                f"pass {n + 1} {cli}: {r['events_per_s']:.0f} events/s, p50 {r['p50_ms']:.1f} ms,"
                f" p99 {r['p99_ms']:.1f} ms, {r['ok']:.0f} answered 200, {r['refused']:.0f}"
                f" refused, {r['stored']:.0f} stored, {r['twice']:.0f} twice",
                flush=True,
            )
    for cli, rs in results.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        print(
            f"webhook_burst cli={cli} events={args.events} clients={args.clients} "
            f"events_per_s={med['events_per_s']:.0f} p50_ms={med['p50_ms']:.1f} "
            f"p99_ms={med['p99_ms']:.1f} (medians of {len(rs)})"
        )


if __name__ == "__main__":
    main()
