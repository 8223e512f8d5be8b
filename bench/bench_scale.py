"""Scale benchmark: what Dagster's instance and this project's automation do with many users.

For each user count, on a Dagster instance with PostgreSQL storage (dagster-postgres, the
production setup; a throwaway database on the local server) and the embedded store for the
connections, it times: registering the users as dynamic partitions, the `new_strava_users`
ticks that discover them (500 users a tick), one `incremental_sync` tick, counting the
partitions of the assets and listing their keys (what the UI's partition pages do), and
building a backfill of every user's current month. Prints the figures; asserts nothing.

Then what an incremental run costs Strava (`incremental_cost`): sandbox athletes whose months
already hold many activities are synced in full once, a few new activities are uploaded, and
the incremental schedule's run of each user goes through the real asset job (fetch, enrich,
store, against the Strava and Open-Meteo sandboxes, the embedded store); it prints the list
and token requests of one run per month size, and of the daily pass over N users, and checks
that every activity is in `runs` and each month of the run whole in its Parquet partition.
(The months are the schedule's of this hour: during a month's first days, the previous one
too; in the three days after that, the lookback reaches before the month, which is listed
whole.)

    python bench/bench_scale.py [--users 1000,10000] [--month-activities 150,450] [--new 5]
                                [--daily-users 5]    (--users 0: the incremental part alone)
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import yaml
from dagster import (
    AssetKey,
    DagsterInstance,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.execution.backfill import PartitionBackfill
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._core.utils import make_new_backfill_id
from sandbox_client import connect
from sync_assets_sandbox import RateLimits, SandboxServer, StravaSandbox

from sync_assets.assets import raw_strava_activities, runs_table, weather_enriched_activities
from sync_assets.core.clients.tokens import StravaTokens
from sync_assets.core.storage import close_stores, open_store
from sync_assets.definitions import defs
from sync_assets.partitions import USERS_PARTITIONS_NAME, month_key, strava_partitions
from sync_assets.resources import (
    ParquetIOManager,
    StravaResource,
    SupabaseResource,
    WeatherResource,
)
from sync_assets.sensors.new_users import new_strava_users
from sync_assets.sensors.schedules import incremental_run_requests, incremental_sync

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


LISTS = "/api/v3/athlete/activities"
ASSETS = [raw_strava_activities, weather_enriched_activities, runs_table]


def _resources(sandbox: StravaSandbox, server: SandboxServer, tmp: Path) -> dict[str, object]:
    supabase = SupabaseResource(data_dir=str(tmp / "data"))
    return {
        "strava": StravaResource(
            client_id=sandbox.client_id,
            client_secret=sandbox.client_secret,
            api_url=server.api_url,
            oauth_url=server.oauth_url,
            supabase=supabase,
        ),
        "weather": WeatherResource(api_url=server.weather_url),
        "parquet_io_manager": ParquetIOManager(base_path=str(tmp / "parquet")),
        "supabase": supabase,
    }


def _materialize(instance, resources, tags: dict[str, str]) -> None:  # noqa: ANN001
    result = materialize(
        ASSETS, instance=instance, resources=resources, tags=tags, raise_on_error=False
    )
    if not result.success:
        raise SystemExit(f"the run failed: {tags}")


def incremental_cost(
    month_sizes: list[int], new: int, daily_users: int
) -> tuple[list[dict[str, int]], dict[str, int]]:
    """Strava requests of one incremental run per month size, and of one daily pass over
    `daily_users` users (each with a month of the largest size): the sandbox's request log,
    counted. Access tokens are made due first, as a day after the last sync they are."""
    sandbox = StravaSandbox(
        seed=77,
        limits=RateLimits(
            read_15min=100_000, read_daily=1_000_000, overall_15min=100_000, overall_daily=1_000_000
        ),
    )
    now = datetime.fromtimestamp(int(sandbox.now()), UTC)
    # The months the schedule's run of this hour syncs (the previous one too early in a month).
    (probe,), _ = incremental_run_requests(["u"], now, period_hours=1, max_runs=1)
    span_start = datetime.strptime(
        probe.tags[ASSET_PARTITION_RANGE_START_TAG].split("|")[0], "%Y-%m-%d"
    ).replace(tzinfo=UTC)
    # The month's older activities lie before the last days (outside an incremental window).
    last_old = max(now - timedelta(days=4), span_start + timedelta(hours=12))
    rows: list[dict[str, int]] = []
    daily = {"users": daily_users, "month": max(month_sizes), "lists": 0, "tokens": 0}
    with (
        tempfile.TemporaryDirectory() as tmp,
        SandboxServer(sandbox) as server,
        instance_for_test() as instance,
    ):
        resources = _resources(sandbox, server, Path(tmp))
        store = open_store(None, Path(tmp) / "data")

        def new_user(in_month: int) -> tuple[str, int]:
            athlete = sandbox.add_athlete(n_activities=100, years=1.0)
            step = (last_old - span_start) / max(in_month, 1)
            for i in range(in_month):
                sandbox.add_activity(athlete.athlete_id, start_date=span_start + step * i)
            user = str(uuid.uuid4())
            connect(store, athlete, user)
            instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
            first = month_key(
                datetime.fromisoformat(sandbox.activities(athlete.athlete_id)[0]["start_date"])
            )
            _materialize(  # the user's first sync: the whole history, listed in full
                instance,
                resources,
                {
                    ASSET_PARTITION_RANGE_START_TAG: f"{first}|{user}",
                    ASSET_PARTITION_RANGE_END_TAG: f"{month_key(now)}|{user}",
                    "sync_assets/sync_type": "backfill",
                },
            )
            for i in range(new):  # uploaded since: the last hours
                sandbox.add_activity(athlete.athlete_id, start_date=now - timedelta(hours=1 + i))
            return user, athlete.athlete_id

        def incremental(users: list[str]) -> tuple[int, int]:
            for user in users:  # a day after the last sync, the access token (6 h) is due
                store.update_tokens(user, lambda t: t.model_copy(update={"expires_at": 0}))
            sandbox.clear_requests()
            requests, _ = incremental_run_requests(users, now, period_hours=1, max_runs=len(users))
            for request in requests:
                _materialize(instance, resources, dict(request.tags))
            return (
                sandbox.request_count(kind="api", path_prefix=LISTS),
                sandbox.request_count(kind="oauth"),
            )

        def stored_ok(user: str, athlete_id: int) -> bool:
            """Every activity in `runs`, and each month of the run whole in its Parquet file."""
            truth = sandbox.activities(athlete_id)
            if sorted(store.run_ids(user)) != sorted(a["id"] for a in truth):
                return False
            for month in {month_key(span_start), month_key(now)}:
                path = Path(tmp) / "parquet" / "raw_strava_activities" / month / user
                ids = pq.read_table(path / "activities.parquet").column("strava_id").to_pylist()
                expected = [
                    a["id"]
                    for a in truth
                    if month_key(datetime.fromisoformat(a["start_date"])) == month
                ]
                if sorted(ids) != sorted(expected):
                    return False
            return True

        for size in month_sizes:
            user, athlete_id = new_user(size)
            in_span = sum(
                1
                for a in sandbox.activities(athlete_id)
                if datetime.fromisoformat(a["start_date"]) >= span_start
            )
            lists, tokens = incremental([user])
            rows.append(
                {
                    "month": size,
                    "in_span": in_span,
                    "new": new,
                    "lists": lists,
                    "tokens": tokens,
                    "full_listing": in_span // 200 + 1,
                    "stored_ok": int(stored_ok(user, athlete_id)),
                }
            )
        if daily_users:
            users = [new_user(max(month_sizes)) for _ in range(daily_users)]
            daily["lists"], daily["tokens"] = incremental([u for u, _ in users])
            daily["stored_ok"] = int(all(stored_ok(u, a) for u, a in users))
        close_stores()
    return rows, daily


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", default="1000,10000")
    parser.add_argument("--month-activities", default="150,450")
    parser.add_argument("--new", type=int, default=5)
    parser.add_argument("--daily-users", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(x) for x in args.month_activities.split(",") if x]
    if sizes:
        rows, daily = incremental_cost(sizes, args.new, args.daily_users)
        print(
            f"{'month holds':>11} {'in the run':>10} {'new':>4} {'list requests':>13} "
            f"{'token':>5} {'full listing':>12} {'all stored':>10}"
        )
        for r in rows:
            print(
                f"{r['month']:>11} {r['in_span']:>10} {r['new']:>4} {r['lists']:>13} "
                f"{r['tokens']:>5} {r['full_listing']:>12} {'yes' if r['stored_ok'] else 'NO':>10}"
            )
        for r in rows:
            print(
                f"strava_requests_per_incremental_run month={r['month']} "
                f"list={r['lists']} token={r['tokens']}"
            )
        if args.daily_users:
            print(
                f"daily_pass users={daily['users']} month={daily['month']} list={daily['lists']} "
                f"token={daily['tokens']} all_stored={'yes' if daily['stored_ok'] else 'NO'}"
            )
    users = [int(x) for x in args.users.split(",") if int(x)]
    if not users:
        return
    print(
        f"{'users':>7} {'partitions':>11} {'sensor ticks':>12} {'s/tick':>7} {'runs asked':>10} "
        f"{'schedule s':>10} {'runs/hour':>9} {'count s':>8} {'keys s':>7} {'backfill s':>10}"
    )
    for n in users:
        r = run(n)
        print(
            f"{r['users']:>7} {r['partitions']:>11,} {r['ticks']:>12} {r['tick_s']:>7.2f} "
            f"{r['requested']:>10} {r['schedule_s']:>10.2f} {r['scheduled']:>9} "
            f"{r['count_s']:>8.2f} {r['keys_s']:>7.2f} {r['backfill_s']:>10.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
