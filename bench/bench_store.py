"""Store benchmark: the `runs_table` path (the enriched Arrow table the asset holds, to rows in
`runs`) against a raw reference, on PostgreSQL and the embedded SQLite.

Three passes per size on a fresh database: insert (all new), re-run (all unchanged: skipped)
and an update where 10% of the rows changed, each pass as a new sync session.

    store  the asset's path, timed from the enriched table: `Store.upsert_runs_table`
    raw    PostgreSQL: psycopg COPY (`write_row`, text format) of prebuilt tuples (built before
           the clock starts) into the same temp table and the same merge (merge_runs.sql), one
           transaction for all rows; SQLite: executemany of prebuilt tuples over the same
           upsert (upsert_run.sql), one transaction

Store and raw each get a fresh database per repeat, so both see the same state per pass, and
are interleaved pass by pass (the order alternates) so that the two figures of a pass are taken
under the same load; medians of --repeat. Nothing is asserted beyond the counts. PostgreSQL is
the machine's server (throwaway databases are created and dropped); set SYNC_ASSETS_TEST_PG
to point elsewhere. The last line is `store_vs_raw insert=R unchanged=R changed=R`: the lowest
PostgreSQL ratio (store rows/s / raw rows/s) over the sizes.

    python bench/bench_store.py [--sizes 10000,100000] [--repeat 3] [--backends postgres,sqlite]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sync_assets_sandbox import generate_activities  # noqa: E402

from sync_assets.core.enrichment.activities import ENRICHED_SCHEMA  # noqa: E402
from sync_assets.core.migrations import plain_postgres_compat_sql  # noqa: E402
from sync_assets.core.models import activities_table, activity_row, validate_page  # noqa: E402
from sync_assets.core.storage import Store, runs_rows  # noqa: E402
from sync_assets.core.storage.base import RUNS_COLUMNS  # noqa: E402
from sync_assets.core.storage.crypto import TokenCipher  # noqa: E402
from sync_assets.core.storage.dialect import POSTGRES, SQLITE  # noqa: E402
from sync_assets.core.storage.postgres import PostgresStore  # noqa: E402
from sync_assets.core.storage.sqlite import SqliteStore  # noqa: E402
from tests.pg import temporary_database  # noqa: E402

PASSES = ("insert", "unchanged", "changed")
CONDITIONS = ("Clear sky", "Partly cloudy", "Overcast", "Light rain", "Fog", "Snow")
PLACES = (("Oslo", "Oslo", "NO"), ("Tokyo", "Tokyo", "JP"), ("Lyon", "Auvergne", "FR"))


def enriched_table(user: str, n: int) -> pa.Table:
    """`n` activities as `weather_enriched_activities` holds them (ENRICHED_SCHEMA): Strava's
    payloads (~1.4 KB each), a place, start-hour weather and the step's enrichment_status
    JSON for most; a few without coordinates, as enrich_tables leaves them."""
    acts = generate_activities(3, 77, n, end=datetime(2026, 1, 1, tzinfo=UTC), years=15)
    now = datetime(2026, 1, 2, tzinfo=UTC)
    batch = validate_page(acts)
    rows = activities_table([activity_row(user, a, p, now) for a, p in batch.activities])
    rows = rows.to_pylist()
    rng = random.Random(17)
    for i, row in enumerate(rows):
        hour = row["start_date"].replace(minute=0, second=0)
        if i % 25 == 0:  # no start coordinates: no place, no weather
            row["start_lat"] = row["start_lng"] = row["end_lat"] = row["end_lng"] = None
            status = {
                "geocoding": False,
                "geocoding_reason": "the activity has no start coordinates",
                "geocoding_status": "no_location",
                "weather": False,
                "weather_reason": "the activity has no start coordinates",
                "weather_status": "no_location",
            }
        else:
            row["city"], row["state"], row["country"] = PLACES[i % len(PLACES)]
            row["temperature_celsius"] = round(rng.uniform(-10, 30), 1)
            row["feels_like_celsius"] = round(row["temperature_celsius"] - rng.uniform(0, 4), 1)
            row["humidity_percent"] = float(rng.randrange(20, 100))
            row["pressure_hpa"] = round(rng.uniform(980, 1040), 1)
            row["wind_speed_mps"] = round(rng.uniform(0, 12), 2)
            row["wind_direction_degrees"] = float(rng.randrange(0, 360))
            row["weather_code"] = rng.randrange(0, 4)
            row["weather_condition"] = CONDITIONS[row["weather_code"]]
            row["visibility_meters"] = float(rng.randrange(1000, 24000))
            row["uv_index"] = round(rng.uniform(0, 8), 1)
            status = {
                "geocoding": True,
                "geocoding_status": "enriched",
                "weather": True,
                "weather_hour": hour.isoformat().replace("+00:00", "Z"),
                "weather_provider": "open-meteo",
                "weather_status": "enriched",
            }
        row["enrichment_status"] = json.dumps(status, sort_keys=True, separators=(",", ":"))
    return pa.Table.from_pylist(rows, schema=ENRICHED_SCHEMA)


def with_changes(table: pa.Table) -> pa.Table:
    """The same table with every tenth activity renamed (the 10%-changed pass)."""
    every_tenth = pa.array([i % 10 == 0 for i in range(table.num_rows)])
    names = table.column("name")
    renamed = pc.if_else(every_tenth, pc.binary_join_element_wise(names, " *", ""), names)
    return table.set_column(table.schema.get_field_index("name"), "name", renamed)


def store_runs(store: Store, table: pa.Table, session_id: str) -> tuple[int, int, int]:
    """The asset's path: the enriched table handed to the store."""
    result = store.upsert_runs_table(table, session_id=session_id)
    assert result.failed == 0, result.errors
    return result.saved, result.updated, result.skipped


def raw_tuples(table: pa.Table, session_id: str) -> list[tuple]:
    """The same rows as prebuilt tuples in the COPY's column order (built before timing)."""
    return [
        tuple(session_id if c == "sync_session_id" else row[c] for c in RUNS_COLUMNS)
        for row in runs_rows(table)
    ]


# psycopg's write_row speaks COPY's text format (the store's copy_runs_stage.sql reads CSV).
RAW_COPY = f"copy runs_stage ({', '.join(RUNS_COLUMNS)}) from stdin"


def raw_postgres(conn: psycopg.Connection, tuples: list[tuple]) -> tuple[int, int, int]:
    """psycopg COPY of the tuples into the temp table and the same merge, one transaction."""
    with conn.transaction():
        conn.execute(POSTGRES.sql("stage_runs"))
        with conn.cursor() as cur, cur.copy(RAW_COPY) as copy:
            for row in tuples:
                copy.write_row(row)
        flags = [r[0] for r in conn.execute(POSTGRES.sql("merge_runs")).fetchall()]
    inserted = sum(flags)
    return inserted, len(flags) - inserted, len(tuples) - len(flags)


def raw_sqlite_params(tuples: list[tuple]) -> list[tuple]:
    """upsert_run.sql's parameters of the tuples, as SQLite keeps them (ISO text times)."""
    return [tuple(SQLITE.when(v) for v in t) for t in tuples]


def raw_sqlite(conn: sqlite3.Connection, params: list[tuple]) -> tuple[int, int, int]:
    """executemany of the prebuilt parameters over the same upsert, one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    before = conn.execute("select count(*) from runs").fetchone()[0]
    changed = conn.executemany(SQLITE.sql("upsert_run"), params).rowcount
    inserted = conn.execute("select count(*) from runs").fetchone()[0] - before
    conn.execute("COMMIT")
    return inserted, changed - inserted, len(params) - changed


@contextmanager
def postgres_db(user: str) -> Iterator[str]:
    """A fresh migrated database with the user (the Supabase basics stubbed)."""
    with temporary_database("sa_bench") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(plain_postgres_compat_sql())
            conn.execute("insert into auth.users (id) values (%s)", (user,))
        yield url


def sessions(store: Store, user: str) -> list[str]:
    """One sync session per pass (each pass is a sync: the rows it writes name it)."""
    return [
        store.create_session(
            run_id=f"bench-{uuid.uuid4()}",
            user_id=user,
            sync_type="manual",
            time_range_start=None,
            time_range_end=None,
        ).id
        for _ in PASSES
    ]


def check(counts: tuple[int, int, int], label: str, n: int) -> None:
    tenth = len(range(0, n, 10))
    want = {"insert": (n, 0, 0), "unchanged": (0, 0, n), "changed": (0, tenth, n - tenth)}
    assert counts == want[label], (label, counts, want[label])


# A pass of one side: prepare (untimed) returns the timed call, which returns its counts.
Pass = Callable[[], Callable[[], tuple[int, int, int]]]


@contextmanager
def postgres_sides(user: str, tables: dict[str, pa.Table]) -> Iterator[dict[str, list[Pass]]]:
    """The store and the raw reference, each on a fresh database of its own."""
    cipher = TokenCipher([Fernet.generate_key().decode()])
    with postgres_db(user) as store_url, postgres_db(user) as raw_url:
        store, other = PostgresStore(store_url, cipher), PostgresStore(raw_url, cipher)
        try:
            store.migrate()
            other.migrate()
            store_ids, raw_ids = sessions(store, user), sessions(other, user)
            with psycopg.connect(raw_url) as conn:

                def raw(table: pa.Table, sid: str) -> Callable[[], tuple[int, int, int]]:
                    tuples = raw_tuples(table, sid)  # prebuilt, before the clock starts
                    return lambda: raw_postgres(conn, tuples)

                yield sides(store, raw, tables, store_ids, raw_ids)
        finally:
            store.close()
            other.close()


def sides(
    store: Store,
    raw: Callable[[pa.Table, str], Callable[[], tuple[int, int, int]]],
    tables: dict[str, pa.Table],
    store_ids: list[str],
    raw_ids: list[str],
) -> dict[str, list[Pass]]:
    """Each pass of both sides, as makers called just before the pass (the raw side prebuilds
    its tuples there, before the clock starts)."""
    return {
        "store": [
            lambda t=t, s=sid: lambda: store_runs(store, t, s)
            for t, sid in zip(tables.values(), store_ids, strict=True)
        ],
        "raw": [
            lambda t=t, s=sid: raw(t, s) for t, sid in zip(tables.values(), raw_ids, strict=True)
        ],
    }


@contextmanager
def sqlite_sides(user: str, tables: dict[str, pa.Table]) -> Iterator[dict[str, list[Pass]]]:
    """The store and the raw reference, each on a fresh SQLite file of its own."""
    cipher = TokenCipher([Fernet.generate_key().decode()])
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "store.db", cipher)
        other = SqliteStore(Path(tmp) / "raw.db", cipher)
        conn = sqlite3.connect(other.path, timeout=60, isolation_level=None)
        try:
            store_ids, raw_ids = sessions(store, user), sessions(other, user)

            def raw(table: pa.Table, sid: str) -> Callable[[], tuple[int, int, int]]:
                params = raw_sqlite_params(raw_tuples(table, sid))  # before the clock starts
                return lambda: raw_sqlite(conn, params)

            yield sides(store, raw, tables, store_ids, raw_ids)
        finally:
            conn.close()
            store.close()
            other.close()


def measure(backend: str, user: str, tables: dict[str, pa.Table], i: int) -> dict[str, dict]:
    """One repeat: each pass on the store's database, then on the raw one (or the other way
    round: the order alternates by pass and repeat), so the two of a pass are timed together."""
    sides = postgres_sides if backend == "postgres" else sqlite_sides
    out: dict[str, dict[str, float]] = {"store": {}, "raw": {}}
    with sides(user, tables) as passes:
        for p, (label, table) in enumerate(tables.items()):
            for kind in ("store", "raw") if (i + p) % 2 == 0 else ("raw", "store"):
                call = passes[kind][p]()
                started = time.perf_counter()
                counts = call()
                out[kind][label] = table.num_rows / (time.perf_counter() - started)
                check(counts, label, table.num_rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="postgres,sqlite")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"rows/s, medians of {args.repeat} interleaved runs (PostgreSQL: "
        f"{os.environ.get('SYNC_ASSETS_TEST_PG', 'postgresql://postgres@127.0.0.1:5432')})"
    )
    lowest: dict[str, float] = {}
    user = str(uuid.uuid4())
    for size in sizes:
        started = time.perf_counter()
        table = enriched_table(user, size)
        tables = {"insert": table, "unchanged": table, "changed": with_changes(table)}
        kb = sum(len(p) for p in table.column("payload").to_pylist()) / size / 1000
        print(
            f"\n{size} rows (payload {kb:.1f} KB/row; table built in "
            f"{time.perf_counter() - started:.1f} s)"
        )
        print(f"{'backend':>9} {'pass':>10} {'store':>9} {'raw':>9} {'ratio':>6}")
        for backend in args.backends.split(","):
            runs: dict[str, list[dict[str, float]]] = {"store": [], "raw": []}
            for i in range(args.repeat):
                for kind, rates in measure(backend, user, tables, i).items():
                    runs[kind].append(rates)
            for label in PASSES:
                store = statistics.median(r[label] for r in runs["store"])
                raw = statistics.median(r[label] for r in runs["raw"])
                ratio = store / raw
                if backend == "postgres":
                    lowest[label] = min(lowest.get(label, ratio), ratio)
                print(
                    f"{backend:>9} {label:>10} {store:>9.0f} {raw:>9.0f} {ratio:>6.2f}", flush=True
                )
    if lowest:
        print(
            f"store_vs_raw insert={lowest['insert']:.2f} unchanged={lowest['unchanged']:.2f} "
            f"changed={lowest['changed']:.2f}"
        )


if __name__ == "__main__":
    main()
