"""Dagster's bookkeeping in a whole-history sync: how much of the wall time goes to the
instance's event log, on the production instance (dagster-postgres) and the embedded one (SQLite).

Each measured sync runs in a fresh process, as `sync-assets sync` runs it: `cli.sync(user)` with
no `--from`/`--to`, i.e. `strava_sync` (raw_strava_activities -> weather_enriched_activities ->
runs_table) over every month from 2009-01 to now (216 partitions of one user) as one
`execute_in_process` run, against the Strava sandbox (one athlete, --activities over --years)
and the Open-Meteo sandbox (the weather provider, `WEATHER_API_URL`), both served on loopback
by the same process. The app's store is the embedded SQLite in both cases, so only Dagster's
instance differs:

* `production`: deploy/production/dagster.yaml, storage on PostgreSQL (dagster-postgres), a
  throwaway database on the local server (created and dropped here, like bench_scale.py);
* `embedded`: sync_assets/embedded_dagster.yaml, what `sync-assets sync` writes to a fresh
  DAGSTER_HOME (SQLite run, event-log and schedule storage).

What is measured:

* `wall`: the `cli.sync` call: creating the run and its planned events, the three steps
  (Strava's listing over HTTP, the sandbox computing the weather it serves and the weather
  cache, the store), the Parquet IO manager, Dagster's events; not the process start, imports
  or `connect`. Open-Meteo's per-minute budget is raised in the sandbox and the client (a
  whole history charges ~900 weighted calls, over the free tier's 600 a minute), so the wall
  time holds no budget wait; `--free-tier` keeps the free limits (and their wait).
* `events`: the time inside `DagsterInstance.handle_new_event` (outermost calls only), the
  one door every event of a run goes through to the instance: serializing, the event-log
  INSERTs, the asset index and tags, run-storage updates of run events, subscribers. With
  `DAGSTER_EVENT_BATCH_SIZE` set, buffered events return at once and the batch is written by
  the call that completes it, so the sum still holds every write. Counted by event type.
* `metadata`: the time the assets spend handing each partition's own metadata to Dagster
  (`AssetExecutionContext.add_asset_metadata` per partition, or the one
  `dagster_private.add_partition_metadata` call per asset that replaced it): Dagster's check
  of each key is bookkeeping too.
* `share` = (events + metadata) / wall, the figure of issue 17's target (<= 10% on production).
* `steps`: what the sync's steps recorded themselves (`sync_step_metrics`: fetch, enrich,
  store); `other` = wall - events - metadata - steps: Dagster's planning and step start and
  end, the Parquet IO manager writing and reading 2 files per partition and asset.

The run's settings are the deployed ones: `DAGSTER_EVENT_BATCH_SIZE` as `sync-assets sync`
sets it (unless the environment sets it: `DAGSTER_EVENT_BATCH_SIZE=0` turns batching off), the
production file's `event_log_pool` (`--event-log-pool async-commit` sets its
`synchronous_commit: false`, `off` leaves the setting out). Other Dagster variables pass
through the environment (e.g. `DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1`, to measure
what it would save).
`--json FILE` appends each run's figures to FILE and `--from-json FILE` prints their table, so
runs of two checkouts can be interleaved and compared.

`--profile` adds a cProfile of one run per instance: own time aggregated by top-level package
(dagster, dagster_postgres, sqlalchemy, ...), and the Dagster functions with the most
cumulative time. Prints the figures; asserts nothing but the sync's success and count. After
the table, a line `dagster_share production=S embedded=S` (medians of the runs' shares).

    python bench/bench_dagster.py [--instances production,embedded] [--repeat 1]
        [--activities 5000] [--years 17.9] [--event-log-pool as-deployed|async-commit|off]
        [--profile] [--free-tier] [--json FILE] [--from-json FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
HIGH = 10_000_000  # weather calls per window when the free tier is not asked for


class EventTimer:
    """Wraps `DagsterInstance.handle_new_event` (seconds and counts per event type) and where
    the assets add each partition's metadata (`AssetExecutionContext.add_asset_metadata`, and
    `dagster_private.add_partition_metadata` where it exists): seconds and calls."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.counts: Counter[str] = Counter()
        self.metadata_seconds = 0.0
        self.metadata_calls = 0
        self.batch_size = "unset"  # DAGSTER_EVENT_BATCH_SIZE as the run's events saw it
        self._depth = 0

    def install(self) -> None:
        from dagster import AssetExecutionContext, DagsterInstance

        handle = DagsterInstance.handle_new_event
        add = AssetExecutionContext.add_asset_metadata
        timer = self

        def handle_new_event(instance, event, *args, **kwargs):  # noqa: ANN001, ANN202
            kind = event.dagster_event_type.value if event.dagster_event_type else "LOG_MESSAGE"
            timer.counts[kind] += 1
            timer.batch_size = os.environ.get("DAGSTER_EVENT_BATCH_SIZE", "unset")
            if timer._depth:
                return handle(instance, event, *args, **kwargs)
            timer._depth += 1
            started = time.perf_counter()
            try:
                return handle(instance, event, *args, **kwargs)
            finally:
                timer.seconds[kind] += time.perf_counter() - started
                timer._depth -= 1

        def add_asset_metadata(context, *args, **kwargs):  # noqa: ANN001, ANN202
            started = time.perf_counter()
            try:
                return add(context, *args, **kwargs)
            finally:
                timer.metadata_seconds += time.perf_counter() - started
                timer.metadata_calls += 1

        DagsterInstance.handle_new_event = handle_new_event
        AssetExecutionContext.add_asset_metadata = add_asset_metadata
        # Where the assets add each partition's metadata at once (imported by name by the
        # assets: patched before they are imported); absent before that helper existed.
        import sync_assets.dagster_private as private

        if hasattr(private, "add_partition_metadata"):
            add_all = private.add_partition_metadata

            def add_partition_metadata(context, by_partition):  # noqa: ANN001, ANN202
                started = time.perf_counter()
                try:
                    return add_all(context, by_partition)
                finally:
                    timer.metadata_seconds += time.perf_counter() - started
                    timer.metadata_calls += 1

            private.add_partition_metadata = add_partition_metadata

    def reset(self) -> None:
        self.seconds.clear()
        self.counts.clear()
        self.metadata_seconds = 0.0
        self.metadata_calls = 0


def _package(filename: str) -> str:
    """The top-level package of a profiled function's file ('~' for builtins)."""
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins"
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    if "sync_assets" in parts:
        return "sync_assets"
    if "sync_assets_sandbox" in parts:
        return "sync_assets_sandbox"
    return "stdlib"


def _profile_report(profile: cProfile.Profile) -> dict[str, object]:
    stats = pstats.Stats(profile)
    by_package: defaultdict[str, float] = defaultdict(float)
    under_events: list[tuple[float, str]] = []
    for (filename, line, name), (_, _, tottime, cumtime, _) in stats.stats.items():
        by_package[_package(filename)] += tottime
        if "dagster" in filename and "site-packages" in filename:
            short = filename.split("site-packages/")[-1]
            under_events.append((cumtime, f"{short}:{line}({name})"))
    under_events.sort(reverse=True)
    return {
        "own_seconds_by_package": dict(sorted(by_package.items(), key=lambda kv: -kv[1])[:12]),
        "dagster_functions_by_cumulative": under_events[:40],
    }


def child(
    instance_kind: str,
    activities: int,
    years: float,
    *,
    free_tier: bool,
    profile: bool,
    pool: str,
):  # noqa: ANN201
    """One sync in this process; prints its figures as one JSON line."""
    warnings.filterwarnings("ignore")
    tmp = Path(tempfile.mkdtemp(prefix="bench_dagster_"))
    db = None
    pooled = "off"
    os.environ.update({"SYNC_ASSETS_HOME": str(tmp / "data"), "DAGSTER_HOME": str(tmp / "dagster")})
    for name in ("DATABASE_URL", "SYNC_ASSETS_STORAGE_URL", "SYNC_ASSETS_LOG_LEVEL"):
        os.environ.pop(name, None)
    (tmp / "dagster").mkdir(parents=True)
    if instance_kind == "production":
        import psycopg

        db = f"bench_dagster_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'create database "{db}"')
        os.environ["DAGSTER_PG_URL"] = f"postgresql://postgres@127.0.0.1:5432/{db}"
        config = yaml.safe_load((REPO / "deploy" / "production" / "dagster.yaml").read_text())
        if pool == "off":
            config.pop("event_log_pool", None)
        elif pool == "async-commit" and "event_log_pool" in config:
            config["event_log_pool"]["synchronous_commit"] = False
        settings_ = config.get("event_log_pool")
        pooled = (
            "off"
            if settings_ is None
            else "on, synchronous_commit "
            + ("on" if settings_.get("synchronous_commit", True) else "off")
        )
        (tmp / "dagster" / "dagster.yaml").write_text(yaml.safe_dump(config))
    # embedded: `sync-assets sync` writes sync_assets/embedded_dagster.yaml there itself.
    from sync_assets_sandbox import SandboxServer, StravaSandbox, WeatherLimits, WeatherSandbox

    from sync_assets.apps.demo_ui import sandbox_environment

    sandbox = StravaSandbox(seed=17)
    athlete = sandbox.add_athlete(n_activities=activities, seed=17, years=years)
    first = datetime(2009, 1, 1, tzinfo=UTC)
    expected = sum(
        1
        for a in sandbox.activities(athlete.athlete_id)
        if datetime.fromisoformat(a["start_date"]) >= first
    )
    weather = WeatherSandbox(
        seed=17,
        clock=sandbox.now,
        limits=WeatherLimits() if free_tier else WeatherLimits(HIGH, HIGH, HIGH),
    )
    server = SandboxServer(sandbox, weather=weather).start()
    timer = EventTimer()
    timer.install()
    try:
        os.environ.update(sandbox_environment(sandbox, server))
        from dagster import Definitions

        import sync_assets.definitions as definitions
        from sync_assets.apps import cli
        from sync_assets.core import settings
        from sync_assets.core.storage import open_store

        if not free_tier:
            resources = dict(definitions.defs.resources or {})
            resources["weather"] = resources["weather"].model_copy(
                update={"calls_per_minute": HIGH, "calls_per_hour": HIGH, "calls_per_day": HIGH}
            )
            d = definitions.defs
            definitions.defs = Definitions(
                assets=d.assets,
                asset_checks=d.asset_checks,
                jobs=d.jobs,
                sensors=d.sensors,
                schedules=d.schedules,
                resources=resources,
                loggers=d.loggers,
                executor=d.executor,
            )
        user = str(uuid.uuid4())
        cli.connect(user, refresh_token=athlete.refresh_token)
        timer.reset()
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        summary = cli.sync(user, quiet=True)
        if profiler:
            profiler.disable()
        wall = time.perf_counter() - started
        assert summary.success, summary.error
        assert summary.activities + summary.quarantined == expected, (summary, expected)
        with open_store(None, settings.data_dir()) as store:
            steps = store.step_metrics(
                since=datetime.now(UTC) - timedelta(hours=1), sync_id=summary.run_id
            )
        out = {
            "instance": instance_kind,
            "activities": summary.activities,
            "months": summary.months,
            "wall": wall,
            "events": sum(timer.seconds.values()),
            "metadata": timer.metadata_seconds,
            "metadata_calls": timer.metadata_calls,
            "steps": {m.step: m.seconds for m in steps},
            "counts": dict(timer.counts),
            "seconds_by_type": dict(timer.seconds),
            "batch_size": timer.batch_size,
            "pool": pooled,
        }
        if profiler:
            out["profile"] = _profile_report(profiler)
        print(json.dumps(out))
    finally:
        server.stop()
        if db:
            import psycopg

            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'drop database "{db}" with (force)')
        shutil.rmtree(tmp, ignore_errors=True)


def _bookkeeping(r: dict) -> float:
    return r["events"] + r.get("metadata", 0.0)


def _print_table(results: dict[str, list[dict[str, object]]]) -> None:
    """Medians over the runs of each instance (shares: the median of the runs' shares)."""
    print(
        f"{'instance':<11} {'months':>6} {'activities':>10} {'wall s':>7} {'events s':>8} "
        f"{'metadata s':>10} {'share':>6} {'steps s':>7} {'other s':>7}"
    )
    shares = {}
    for kind, runs in results.items():

        def med(value, runs=runs) -> float:  # noqa: ANN001 - a function of one run
            return statistics.median(value(r) for r in runs)

        shares[kind] = med(lambda r: _bookkeeping(r) / r["wall"])
        print(
            f"{kind:<11} {runs[0]['months']:>6} {runs[0]['activities']:>10,} "
            f"{med(lambda r: r['wall']):>7.1f} {med(lambda r: r['events']):>8.1f} "
            f"{med(lambda r: r.get('metadata', 0.0)):>10.1f} {shares[kind]:>6.1%} "
            f"{med(lambda r: sum(r['steps'].values())):>7.1f} "
            f"{med(lambda r: r['wall'] - _bookkeeping(r) - sum(r['steps'].values())):>7.1f}"
        )
    for kind, runs in results.items():
        first = runs[0]
        types = sorted(first["seconds_by_type"], key=lambda k: -first["seconds_by_type"][k])
        by_type = ", ".join(
            f"{k} {first['counts'][k]} / "
            f"{statistics.median(r['seconds_by_type'].get(k, 0.0) for r in runs):.2f} s"
            for k in types[:3]
        )
        steps = ", ".join(
            f"{k} {statistics.median(r['steps'].get(k, 0.0) for r in runs):.1f}"
            for k in first["steps"]
        )
        print(
            f"  {kind}: DAGSTER_EVENT_BATCH_SIZE={first['batch_size']} in the run, event_log_pool "
            f"{first['pool']}; {sum(first['counts'].values())} events "
            f"({by_type}, ...); {first.get('metadata_calls', 0)} add_asset_metadata calls; "
            f"steps' own seconds: {steps}"
        )
    for kind, runs in results.items():
        counts = ", ".join(f"{k} {v}" for k, v in sorted(runs[0]["counts"].items()))
        print(f"  {kind} events by type: {counts}")
    print("dagster_share " + " ".join(f"{k}={v:.3f}" for k, v in shares.items()))


def run_child(kind: str, args: argparse.Namespace, profile: bool) -> dict[str, object]:
    cmd = [
        sys.executable, __file__, "--child", kind,
        "--activities", str(args.activities), "--years", str(args.years),
    ]  # fmt: skip
    if args.free_tier:
        cmd.append("--free-tier")
    cmd += ["--event-log-pool", args.event_log_pool]
    if profile:
        cmd.append("--profile")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise SystemExit(f"{kind} run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", default="production,embedded")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--activities", type=int, default=5000)
    parser.add_argument("--years", type=float, default=17.9)
    parser.add_argument("--free-tier", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--event-log-pool",
        choices=("as-deployed", "async-commit", "off"),
        default="as-deployed",
        help="production: deploy/production/dagster.yaml's event_log_pool as it is, with "
        "synchronous_commit false, or left out",
    )
    parser.add_argument("--json", type=Path, help="also append each run's figures to this file")
    parser.add_argument(
        "--from-json", type=Path, help="print the table of the runs saved by --json, run nothing"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(
            args.child,
            args.activities,
            args.years,
            free_tier=args.free_tier,
            profile=args.profile,
            pool=args.event_log_pool,
        )
        return
    if args.from_json:
        saved: dict[str, list[dict[str, object]]] = defaultdict(list)
        for line in args.from_json.read_text().splitlines():
            run = json.loads(line)
            saved[run["instance"]].append(run)
        print(f"{args.from_json}: {', '.join(f'{len(v)} {k}' for k, v in saved.items())} runs")
        _print_table(saved)
        return
    kinds = args.instances.split(",")
    batch = os.environ.get("DAGSTER_EVENT_BATCH_SIZE")
    print(
        f"whole-history sync, {args.activities:,} activities over {args.years} years, "
        f"medians of {args.repeat} (interleaved); DAGSTER_EVENT_BATCH_SIZE="
        f"{batch if batch is not None else 'unset'} in the caller's environment"
    )
    results: dict[str, list[dict[str, object]]] = {k: [] for k in kinds}
    for _ in range(args.repeat):
        for kind in kinds:
            results[kind].append(run_child(kind, args, profile=False))
            if args.json:
                with args.json.open("a") as fh:
                    fh.write(json.dumps(results[kind][-1]) + "\n")
    if args.repeat:
        _print_table(results)
    if args.profile:
        for kind in kinds:
            report = run_child(kind, args, profile=True)["profile"]
            print(f"profile, {kind}: own seconds by package:")
            for package, seconds in report["own_seconds_by_package"].items():
                print(f"  {package:<22} {seconds:>7.2f}")
            print(f"profile, {kind}: Dagster functions by cumulative seconds:")
            for seconds, name in report["dagster_functions_by_cumulative"]:
                print(f"  {seconds:>7.2f}  {name}")
    print(
        "wall: the cli.sync call (run creation, the three steps with HTTP to the in-process "
        "sandboxes, Parquet, Dagster's events); events: inside DagsterInstance.handle_new_event; "
        "metadata: inside AssetExecutionContext.add_asset_metadata; share = (events + metadata) "
        "/ wall; steps: the sync's own sync_step_metrics; other = the rest"
    )


if __name__ == "__main__":
    main()
