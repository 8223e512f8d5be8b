"""Scale benchmark: what Dagster's instance and this project's automation do with many users.

For each user count, on a Dagster instance with PostgreSQL storage (dagster-postgres, the
production setup; a throwaway database on the local server) and the embedded store for the
connections, it times: registering the users as dynamic partitions, the `new_strava_users`
ticks that discover them (500 users a tick), one `incremental_sync` tick, counting the
partitions of the assets and listing their keys (what the UI's partition pages do), and
building a backfill of every user's current month. Prints the figures; asserts nothing.

    python bench/bench_scale.py [--users 1000,10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import yaml
from dagster import AssetKey, DagsterInstance, build_schedule_context, build_sensor_context
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.execution.backfill import PartitionBackfill
from dagster._core.utils import make_new_backfill_id

from sync_assets.core.clients.tokens import StravaTokens
from sync_assets.core.storage import close_stores, open_store
from sync_assets.definitions import defs
from sync_assets.partitions import USERS_PARTITIONS_NAME, month_key, strava_partitions
from sync_assets.resources import SupabaseResource
from sync_assets.sensors.new_users import new_strava_users
from sync_assets.sensors.schedules import incremental_sync

warnings.filterwarnings("ignore")
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TOKENS = StravaTokens(access_token="a" * 20, refresh_token="r" * 20, expires_at=2_000_000_000)


def timed(fn):  # noqa: ANN001, ANN201 - a tiny helper
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def run(n: int) -> dict[str, float]:
    db = f"bench_scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'create database "{db}"')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "dagster"
            home.mkdir()
            url = f"postgresql://postgres@127.0.0.1:5432/{db}"
            (home / "dagster.yaml").write_text(
                yaml.safe_dump({"storage": {"postgres": {"postgres_url": url}}})
            )
            instance = DagsterInstance.from_config(str(home))
            data = Path(tmp) / "data"
            store = open_store(None, data)
            users = [str(uuid.uuid4()) for _ in range(n)]
            _, connect_s = timed(lambda: [store.save_connection(u, TOKENS) for u in users])
            resources = {"supabase": SupabaseResource(data_dir=str(data))}
            cursor, ticks, tick_s, requested = None, 0, 0.0, 0
            while True:
                ctx = build_sensor_context(instance=instance, cursor=cursor, resources=resources)
                result, seconds = timed(lambda ctx=ctx: new_strava_users(ctx))
                if not hasattr(result, "run_requests"):
                    break
                ticks += 1
                tick_s += seconds
                requested += len(result.run_requests)
                keys = result.dynamic_partitions_requests[0].partition_keys
                _, add_s = timed(
                    lambda k=keys: instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, k)
                )
                tick_s += add_s
                cursor = result.cursor
            with build_schedule_context(
                instance=instance, scheduled_execution_time=datetime.now(UTC), resources=resources
            ) as sctx:
                scheduled, schedule_s = timed(lambda: incremental_sync(sctx))
            with partition_loading_context(dynamic_partitions_store=instance):
                count, count_s = timed(strava_partitions.get_num_partitions)
            _, keys_s = timed(
                lambda: strava_partitions.get_partition_keys(dynamic_partitions_store=instance)
            )
            month = month_key(datetime.now(UTC))
            _, backfill_s = timed(
                lambda: instance.add_backfill(
                    PartitionBackfill.from_asset_partitions(
                        backfill_id=make_new_backfill_id(),
                        asset_graph=defs.resolve_asset_graph(),
                        partition_names=[f"{month}|{u}" for u in users],
                        asset_selection=[AssetKey("raw_strava_activities")],
                        backfill_timestamp=time.time(),
                        tags={},
                        dynamic_partitions_store=instance,
                        all_partitions=False,
                        title=None,
                        description=None,
                        run_config=None,
                    )
                )
            )
            instance.dispose()
            close_stores()
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'drop database "{db}" with (force)')
    return {
        "users": n,
        "connect_s": connect_s,
        "ticks": ticks,
        "tick_s": tick_s / max(ticks, 1),
        "requested": requested,
        "scheduled": len(scheduled) if isinstance(scheduled, list) else 0,
        "schedule_s": schedule_s,
        "partitions": count,
        "count_s": count_s,
        "keys_s": keys_s,
        "backfill_s": backfill_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", default="1000,10000")
    args = parser.parse_args()
    print(
        f"{'users':>7} {'partitions':>11} {'sensor ticks':>12} {'s/tick':>7} {'runs asked':>10} "
        f"{'schedule s':>10} {'runs/hour':>9} {'count s':>8} {'keys s':>7} {'backfill s':>10}"
    )
    for n in (int(x) for x in args.users.split(",")):
        r = run(n)
        print(
            f"{r['users']:>7} {r['partitions']:>11,} {r['ticks']:>12} {r['tick_s']:>7.2f} "
            f"{r['requested']:>10} {r['schedule_s']:>10.2f} {r['scheduled']:>9} "
            f"{r['count_s']:>8.2f} {r['keys_s']:>7.2f} {r['backfill_s']:>10.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
