"""What server-side prepared statements would save, and what a transaction pooler costs: whole
syncs (the three assets in process, against the sandboxes) and one small read repeated, each
on the machine's PostgreSQL three ways:

    prepared   direct connection, psycopg's default (a statement is prepared on the server
               after 5 runs on a connection): what the store did before, away from port 6543
    direct     direct connection, no prepared statement (the store's only mode now)
    pgbouncer  through PgBouncer in transaction mode (its defaults, a free port), no prepared
               statement: what a Supabase pooler user gets

Each repeat runs the three in turn (the order rotates), each sync on a fresh database with a
fresh Dagster instance; medians of --repeat. The pooled sync also reports how many statements
and transactions went through PgBouncer (its SHOW STATS), and one statement of the store is
timed on two direct connections, prepared and not (the saving per statement, times the
statements of a sync, is what preparing would save). Nothing is asserted beyond the counts.

    python bench/bench_pooler.py [--activities 1000] [--years 4] [--repeat 3] [--reads 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import psycopg
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dagster import instance_for_test  # noqa: E402
from sync_assets_sandbox import SandboxServer, StravaSandbox  # noqa: E402

from sync_assets.core.storage import close_stores, open_store  # noqa: E402
from sync_assets.core.storage.dialect import POSTGRES  # noqa: E402
from sync_assets.core.storage.postgres import PostgresStore  # noqa: E402
from sync_assets.partitions import USERS_PARTITIONS_NAME  # noqa: E402
from tests.helpers import BOOTSTRAP, connect_user, make_resources, sync_range  # noqa: E402
from tests.helpers.pgbouncer import PgBouncer  # noqa: E402
from tests.helpers.strava import whole_history  # noqa: E402
from tests.pg import temporary_database  # noqa: E402

MODES = ("prepared", "direct", "pgbouncer")


def prepare_threshold(mode: str) -> None:
    """The store's psycopg setting for this mode (a bench-only switch of its default)."""
    PostgresStore.__init__.__kwdefaults__["prepare_threshold"] = 5 if mode == "prepared" else None


def one(mode: str, bouncer: PgBouncer, args: argparse.Namespace) -> dict[str, float]:
    prepare_threshold(mode)
    sandbox = StravaSandbox(seed=1234)
    with (
        SandboxServer(sandbox) as server,
        temporary_database("sa_bench_pool") as direct,
        tempfile.TemporaryDirectory() as tmp,
    ):
        with psycopg.connect(direct, autocommit=True) as conn:
            conn.execute(BOOTSTRAP)
        url = bouncer.url(direct) if mode == "pgbouncer" else direct
        data_dir = Path(tmp) / "data"
        store = open_store(url, data_dir)
        user, athlete = connect_user(store, sandbox, direct, args.activities, years=args.years)
        t0 = time.perf_counter()
        for _ in range(args.reads):
            store.get(user)
        read_us = (time.perf_counter() - t0) / args.reads * 1e6
        stmt = statement_us(direct, user, args.reads) if mode == "direct" else {}
        before = stats(bouncer, direct)
        resources = make_resources(sandbox, server, Path(tmp), url, data_dir)
        first, last = whole_history(sandbox, athlete)
        with instance_for_test() as instance:
            instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
            t0 = time.perf_counter()
            result = sync_range(instance, resources, user, first, last)
            sync_s = time.perf_counter() - t0
        assert result.success, mode
        assert len(store.run_ids(user)) == args.activities
        close_stores()
        after = stats(bouncer, direct)
    out = {"sync_s": sync_s, "read_us": read_us} | stmt
    if mode == "pgbouncer":
        out["queries"] = after["total_query_count"] - before["total_query_count"]
        out["transactions"] = after["total_xact_count"] - before["total_xact_count"]
    return out


def statement_us(url: str, user: str, n: int) -> dict[str, float]:
    """One statement of the store (get_connection.sql, what every token read runs) on two
    direct connections, psycopg's default (prepared after 5 runs) and none, in alternating
    blocks of 100: microseconds per execution, each connection's median block."""
    sql, params = POSTGRES.sql("get_connection"), {"user_id": user}
    blocks: dict[str, list[float]] = {"stmt_prepared_us": [], "stmt_unprepared_us": []}
    with (
        psycopg.connect(url, autocommit=True) as prepared,
        psycopg.connect(url, autocommit=True, prepare_threshold=None) as unprepared,
    ):
        for _ in range(max(n // 100, 1)):
            for key, conn in (("stmt_prepared_us", prepared), ("stmt_unprepared_us", unprepared)):
                t0 = time.perf_counter()
                for _ in range(100):
                    conn.execute(sql, params).fetchone()
                blocks[key].append((time.perf_counter() - t0) / 100 * 1e6)
    return {key: statistics.median(values) for key, values in blocks.items()}


def stats(bouncer: PgBouncer, direct: str) -> dict[str, int]:
    """PgBouncer's totals for the database (refreshed every stats_period, 1 s here)."""
    time.sleep(1.2)
    database = direct.rsplit("/", 1)[1]
    rows = [r for r in bouncer.show("STATS") if r["database"] == database]
    return (
        {k: int(v) for k, v in rows[0].items() if k.startswith("total_")}
        if rows
        else {
            "total_query_count": 0,
            "total_xact_count": 0,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--activities", type=int, default=1000)
    parser.add_argument("--years", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    figures: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    with PgBouncer({"stats_period": 1}) as bouncer:
        for r in range(args.repeat):
            for mode in MODES[r % 3 :] + MODES[: r % 3]:
                figures[mode].append(one(mode, bouncer, args))
                print(mode, figures[mode][-1], flush=True)
    print(f"\n{args.activities} activities over {args.years} years, medians of {args.repeat}")
    print(f"{'mode':>10} {'sync s':>8} {'read us':>8}")
    for mode in MODES:
        sync_s = statistics.median(f["sync_s"] for f in figures[mode])
        read_us = statistics.median(f["read_us"] for f in figures[mode])
        print(f"{mode:>10} {sync_s:8.2f} {read_us:8.0f}")
    for key in ("stmt_prepared_us", "stmt_unprepared_us"):
        value = statistics.median(f[key] for f in figures["direct"])
        print(f"get_connection.sql on a direct connection, {key.split('_')[1]}: {value:.0f} us")
    pooled = figures["pgbouncer"][-1]
    print(
        f"through PgBouncer, one sync: {pooled['queries']:.0f} statements in "
        f"{pooled['transactions']:.0f} transactions"
    )


if __name__ == "__main__":
    main()
