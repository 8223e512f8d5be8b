"""Store benchmark: rows per second upserting activities into PostgreSQL and the embedded SQLite.

Three passes per size: first insert (all new), re-run (all unchanged: skipped), and an update
where 10% of rows changed. Medians of --repeat runs; nothing is asserted. PostgreSQL is the
machine's server (a throwaway database is created and dropped); set SYNC_ASSETS_TEST_PG to
point elsewhere.

    python bench/bench_store.py [--sizes 10000,100000] [--repeat 3] [--backends postgres,sqlite]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sync_assets_sandbox import generate_activities  # noqa: E402

from sync_assets.core.migrations import plain_postgres_compat_sql  # noqa: E402
from sync_assets.core.models import activities_table, activity_row, validate_page  # noqa: E402
from sync_assets.core.storage import runs_rows  # noqa: E402
from sync_assets.core.storage.crypto import TokenCipher  # noqa: E402
from sync_assets.core.storage.postgres import PostgresStore  # noqa: E402
from sync_assets.core.storage.sqlite import SqliteStore  # noqa: E402
from tests.pg import temporary_database  # noqa: E402


def make_rows(user: str, n: int) -> list[dict]:
    acts = generate_activities(3, 77, n, end=datetime(2026, 1, 1, tzinfo=UTC), years=15)
    now = datetime(2026, 1, 2, tzinfo=UTC)
    batch = validate_page(acts)
    return runs_rows(activities_table([activity_row(user, a, p, now) for a, p in batch.activities]))


def measure(store, rows: list[dict]) -> dict[str, float]:
    out = {}
    for label, data in (
        ("insert", rows),
        ("unchanged", rows),
        (
            "10% changed",
            [{**r, "name": r["name"] + " *"} if i % 10 == 0 else r for i, r in enumerate(rows)],
        ),
    ):
        started = time.perf_counter()
        result = store.upsert_runs(data)
        seconds = time.perf_counter() - started
        assert result.failed == 0
        out[label] = len(data) / seconds
    return out


def run(backend: str, size: int) -> dict[str, float]:
    cipher = TokenCipher([Fernet.generate_key().decode()])
    user = str(uuid.uuid4())
    rows = make_rows(user, size)
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            store = SqliteStore(Path(tmp) / "bench.db", cipher)
            try:
                return measure(store, rows)
            finally:
                store.close()
    with temporary_database("sa_bench") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(plain_postgres_compat_sql())
            conn.execute("insert into auth.users (id) values (%s)", (user,))
        store = PostgresStore(url, cipher)
        try:
            store.migrate()
            return measure(store, rows)
        finally:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="postgres,sqlite")
    args = parser.parse_args()
    print(
        f"rows/s, medians of {args.repeat} runs (PostgreSQL: "
        f"{os.environ.get('SYNC_ASSETS_TEST_PG', 'postgresql://postgres@127.0.0.1:5432')})"
    )
    print(f"{'backend':>9} {'rows':>8} {'insert':>9} {'unchanged':>10} {'10% changed':>12}")
    for backend in args.backends.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            runs = [run(backend, size) for _ in range(args.repeat)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(
                f"{backend:>9} {size:>8} {med['insert']:>9.0f} {med['unchanged']:>10.0f} "
                f"{med['10% changed']:>12.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
