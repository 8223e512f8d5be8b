"""`sync-assets`: the command line for scripts, cron and the offline demo.

    sync-assets demo                       # sandbox + two demo athletes, whole history, summary
    sync-assets sandbox [--port 8710]      # Strava-compatible sandbox on loopback
    sync-assets db init [--plain-postgres]  # migrations on DATABASE_URL (plain PostgreSQL too)
    sync-assets connect --user ID (--refresh-token T | --code C) [--scope S] [--create-auth-user]
    sync-assets ui                         # the Dagster UI on the demo's data, its sandboxes again
    sync-assets sync --user ID [--from YYYY-MM] [--to YYYY-MM] [--quiet] [--json]  # live progress
    sync-assets enrich --user ID [--from YYYY-MM] [--to YYYY-MM] [--quiet]  # weather, no Strava
    sync-assets webhook [--port 8711]      # Strava push events (+ OAuth with SUPABASE_JWT_SECRET)
    sync-assets rotate-keys                # after prepending a key to SYNC_ASSETS_ENCRYPTION_KEYS
    sync-assets status [--user ID] [--limit N] [--sync-id ID] [--json]  # recent syncs, errors
    sync-assets schema                     # the JSON Schema of --json's SyncResponse

Credentials come from the environment (STRAVA_CLIENT_ID, STRAVA_CLIENT_SECRET, STRAVA_API_URL,
STRAVA_OAUTH_URL; WEATHER_API_URL, WEATHER_PROVIDER); data goes under SYNC_ASSETS_HOME (default
~/.sync_assets), Dagster's instance under DAGSTER_HOME (default $SYNC_ASSETS_HOME/dagster).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import time
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from pydantic import SecretStr

from sync_assets.core import settings
from sync_assets.core.errors import ErrorType, SyncError
from sync_assets.core.files import write_text_atomically
from sync_assets.partitions import (
    FIRST_MONTH,
    USERS_PARTITIONS_NAME,
    month_key,
    partition_key,
    validate_user_id,
)

if TYPE_CHECKING:  # imports Dagster: loaded when a sync runs, not for every command
    from sync_assets.sync_request import SyncOptions

log = logging.getLogger("sync_assets")


def _require_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"error: set {name} (see README: 'Pointing it at real Strava')")
    return value


def prepare_dagster_home() -> Path:
    """DAGSTER_HOME for the embedded default: SQLite storage under the data folder."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.data_dir() / "dagster")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        # Whole or not at all: another command starting now may be reading it.
        write_text_atomically(
            config, (resources.files("sync_assets") / "embedded_dagster.yaml").read_text()
        )
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _instance():  # noqa: ANN202 - DagsterInstance, imported lazily (slow import)
    from dagster import DagsterInstance

    prepare_dagster_home()
    return DagsterInstance.get()


def user_arg(value: str) -> str:
    """A `--user`: the app's user id, a uuid as the help says (and a valid partition key)."""
    try:
        uuid.UUID(value)
    except ValueError:
        raise SyncError(
            ErrorType.CONFIGURATION,
            f"--user {value!r} is not a uuid: give the app's user id "
            "(e.g. 6f1c2a4e-8b3d-4f5e-9a7b-1c2d3e4f5a6b)",
            retryable=False,
        ) from None
    return validate_user_id(value)


def month_range(first_month: str | None, last_month: str | None) -> tuple[str, str]:
    """`--from` / `--to` as partition months, checked before any run exists: months before
    Strava's start are clamped to it (said on stderr), months after the current one and an
    inverted range refused."""
    now = month_key(datetime.now(UTC))
    first, last = first_month or FIRST_MONTH, last_month or now
    if first > last:
        raise SystemExit(f"error: --from {first[:7]} is after --to {last[:7]}")
    if last > now:
        raise SystemExit(f"error: --to {last[:7]} is after the current month ({now[:7]})")
    if last < FIRST_MONTH:
        raise SystemExit(
            f"error: --to {last[:7]} is before {FIRST_MONTH[:7]}, Strava's first month: "
            "there is nothing to sync"
        )
    if first < FIRST_MONTH:
        print(
            f"note: --from {first[:7]} is before {FIRST_MONTH[:7]} (Strava's start): from "
            f"{FIRST_MONTH[:7]}",
            file=sys.stderr,
        )
        first = FIRST_MONTH
    return first, last


def _parse_month(value: str) -> str:
    try:
        return datetime.strptime(value, "%Y-%m").strftime("%Y-%m-01")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not YYYY-MM") from None


# -- connect ---------------------------------------------------------------------------------
def connect(
    user_id: str,
    *,
    refresh_token: str | None = None,
    code: str | None = None,
    scope: str | None = None,
    create_auth_user: bool = False,
) -> int:
    """Register a user's Strava connection and their Dagster partition; returns the athlete id.

    `scope` is what the athlete granted, as the OAuth redirect carries it (`scope=...`);
    Strava's token answer does not repeat it. Without `activity:read` or `activity:read_all`
    nothing can be listed: refused here, before anything is stored. On PostgreSQL the user
    must be in `auth.users` (Supabase: signed up; plain PostgreSQL: `create_auth_user` adds
    it): checked before the code is spent or anything is written.
    """
    from sync_assets.core.clients.rate_limit import shared_budget
    from sync_assets.core.clients.strava import (
        StravaClient,
        exchange_code,
        parse_scopes,
        refresh_grant,
        scope_notes,
    )
    from sync_assets.core.storage import open_store

    user_id = user_arg(user_id)
    scopes = ",".join(sorted(parse_scopes(scope))) if scope is not None else None
    scope_notes(scopes, user_id)  # refuses a grant that cannot list activities
    client_id = _require_env("STRAVA_CLIENT_ID")
    secret = SecretStr(_require_env("STRAVA_CLIENT_SECRET"))
    database_url = settings.database_url()
    if database_url:
        from sync_assets.core import dbinit

        problem = dbinit.auth_user_problem(database_url, user_id, create=create_auth_user)
        if problem:
            raise SyncError(ErrorType.CONFIGURATION, problem, retryable=False)
    with open_store(database_url, settings.data_dir()) as store:
        if code:
            tokens, athlete, _ = exchange_code(
                client_id=client_id,
                client_secret=secret,
                code=code,
                oauth_url=settings.strava_oauth_url(),
            )
            store.save_connection(user_id, tokens, athlete_id=athlete.get("id"), scopes=scopes)
        elif refresh_token:
            # Proved before anything is stored: a refused token leaves nothing behind.
            tokens = refresh_grant(
                client_id=client_id,
                client_secret=secret,
                refresh_token=refresh_token,
                oauth_url=settings.strava_oauth_url(),
            )
            store.save_connection(user_id, tokens, scopes=scopes)
        else:
            raise SystemExit("error: give --refresh-token or --code")
        budget = shared_budget(
            settings.strava_api_url(),
            client_id,
            max_wait_seconds=settings.strava_max_wait_seconds(),
        )
        with StravaClient(
            user_id=user_id,
            client_id=client_id,
            client_secret=secret,
            token_store=store,
            budget=budget,
            api_url=settings.strava_api_url(),
            oauth_url=settings.strava_oauth_url(),
        ) as client:
            athlete = client.athlete()
        store.save_connection(
            user_id, store.get(user_id).tokens, athlete_id=athlete.get("id"), scopes=scopes
        )
    _instance().add_dynamic_partitions(USERS_PARTITIONS_NAME, [user_id])
    return int(athlete["id"])


# -- db init ---------------------------------------------------------------------------------
def init_database(*, plain_postgres: bool) -> int:
    """`sync-assets db init [--plain-postgres]`: the migrations, on DATABASE_URL."""
    from sync_assets.core import dbinit

    url = settings.database_url()
    if not url:
        raise SystemExit(
            "error: set DATABASE_URL (postgresql://...); the embedded default (SQLite) needs no "
            "init"
        )
    applied = dbinit.init_database(url, plain_postgres=plain_postgres)
    where = dbinit.describe(url)
    if applied:
        print(f"applied {len(applied)} migrations to {where}: {', '.join(applied)}")
    else:
        print(f"{where} is up to date: no migration to apply")
    return 0


# -- sync ------------------------------------------------------------------------------------
@dataclass
class SyncSummary:
    user_id: str
    success: bool
    months: int
    activities: int
    quarantined: int
    list_requests: int
    list_requests_minimum: int
    token_requests: int
    saved: int
    updated: int
    unchanged: int
    seconds: float
    run_id: str
    error: str | None = None
    weather_enriched: int = 0
    weather_pending: int = 0
    weather_failed: int = 0
    no_location: int = 0
    weather_skipped: int = 0  # stored without weather: the sync was asked to skip it
    weather_requests: int = 0
    weather_cache_hits: int = 0


def sync(
    user_id: str,
    first_month: str | None = None,
    last_month: str | None = None,
    *,
    quiet: bool = False,
    options: SyncOptions | None = None,
) -> SyncSummary:
    """Materialize a user's months as one Dagster run (one paginated Strava query);
    `options`: the run's `SyncOptions` (None: the defaults)."""
    from sync_assets.job_names import STRAVA_SYNC_JOB

    return _run_job(STRAVA_SYNC_JOB, user_id, first_month, last_month, quiet=quiet, options=options)


def enrich(
    user_id: str,
    first_month: str | None = None,
    last_month: str | None = None,
    *,
    quiet: bool = False,
) -> SyncSummary:
    """Enrich a user's stored months again (weather pending, failed or skipped); no Strava
    request."""
    from sync_assets.job_names import WEATHER_ENRICHMENT_JOB

    return _run_job(WEATHER_ENRICHMENT_JOB, user_id, first_month, last_month, quiet=quiet)


def _session_seconds(sessions: list) -> float | None:  # noqa: ANN001 - SessionRecord
    """The sync's time as its session says it (started_at..completed_at): `status` shows the
    same figure. None before a session has both ends."""
    ends = [(s.started_at, s.completed_at) for s in sessions if s.started_at and s.completed_at]
    if not ends:
        return None
    return (max(e for _, e in ends) - min(s for s, _ in ends)).total_seconds()


def _run_job(
    job_name: str,
    user_id: str,
    first_month: str | None,
    last_month: str | None,
    *,
    quiet: bool = False,
    options: SyncOptions | None = None,
) -> SyncSummary:
    """One Dagster run in this process, its progress on stderr (`terminal_progress`: live on
    a terminal, a line per phase otherwise, nothing when `quiet`), read from its sessions.
    `options` go to the job's assets as their config (`sensors.requests.run_config_for`)."""
    from dagster import DagsterEventType

    from sync_assets.dagster_private import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )
    from sync_assets.definitions import defs
    from sync_assets.sensors.requests import run_config_for
    from sync_assets.sync_request import SyncOptions

    # The arguments first, then the user: nothing is created for a request that cannot run.
    user_id = user_arg(user_id)
    first, last = month_range(first_month, last_month)
    instance = _instance()
    if not instance.has_dynamic_partition(USERS_PARTITIONS_NAME, user_id):
        raise SystemExit(f"error: user {user_id} is not connected: run `sync-assets connect`")
    from sync_assets.apps.terminal_progress import SessionProgress
    from sync_assets.core.storage import open_store
    from sync_assets.local_runs import (
        batched_event_writes,
        fail_dead_local_runs,
        fail_open_sessions,
        local_run_tags,
        user_turn,
    )

    with open_store(settings.database_url(), settings.data_dir()) as store:
        # A run of an earlier command that was killed: failed now, so this one resumes from it.
        for run_id in fail_dead_local_runs(instance, store):
            print(f"  run {run_id[:8]} of an earlier command died; this sync resumes after it")
        started = time.perf_counter()
        run_id = str(uuid.uuid4())  # known before the run starts: its sessions are watched

        def tell(line: str) -> None:
            if not quiet:
                print(f"  {line}", file=sys.stderr)

        with (
            # One run of a user at a time, with the queue's runs and other processes' too.
            user_turn(instance, store, user_id, run_id, notify=tell),
            SessionProgress(store, run_id, stream=sys.stderr, quiet=quiet) as progress,
            batched_event_writes(),
        ):
            result = defs.resolve_job_def(job_name).execute_in_process(
                instance=instance,
                run_id=run_id,
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: str(partition_key(user_id, first)),
                    ASSET_PARTITION_RANGE_END_TAG: str(partition_key(user_id, last)),
                    **local_run_tags(user_id),
                },
                # The run's events are stored in the instance; the terminal gets warnings only.
                run_config={
                    **run_config_for(job_name, options or SyncOptions()),
                    "loggers": {"console": {"config": {"log_level": "WARNING"}}},
                },
                raise_on_error=False,
            )
        error = _run_error(result)
        if error is not None:
            # A failure the steps could not write themselves (their database connection
            # dropped, Dagster failed around them) leaves no session in a working state.
            from sync_assets.sensors.run_status import finish_run

            reason = f"Dagster run {run_id} failed: {error}"
            fail_open_sessions(
                lambda: finish_run(store, result.dagster_run, success=False, reason=reason)
            )
        seconds = _session_seconds(progress.sessions or store.run_sessions(run_id))
    if seconds is None:  # no session (the run failed before its first step)
        seconds = time.perf_counter() - started
    # The run's figures: the `run_` keys every partition's materialization carries.
    by_asset: dict[str, dict[str, object]] = {}
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            name = event.asset_key.to_user_string()
            by_asset.setdefault(
                name,
                {
                    k.removeprefix("run_"): v.value
                    for k, v in event.materialization.metadata.items()
                    if k.startswith("run_")
                },
            )
    metadata = by_asset.get("raw_strava_activities", {})
    stored = by_asset.get("runs_table", {})
    weather = by_asset.get("weather_enriched_activities", {})
    months = (int(last[:4]) - int(first[:4])) * 12 + int(last[5:7]) - int(first[5:7]) + 1
    return SyncSummary(
        user_id=user_id,
        success=result.success,
        months=months,
        activities=int(metadata.get("activities", 0)),
        quarantined=int(metadata.get("quarantined", 0)),
        list_requests=int(metadata.get("list_requests", 0)),
        list_requests_minimum=int(metadata.get("list_requests_minimum", 0)),
        token_requests=int(metadata.get("token_requests", 0)),
        saved=int(stored.get("saved", 0)),
        updated=int(stored.get("updated", 0)),
        unchanged=int(stored.get("skipped_unchanged", 0)),
        seconds=seconds,
        run_id=result.run_id,
        error=error,
        weather_enriched=int(weather.get("weather_enriched", 0)),
        weather_pending=int(weather.get("weather_pending", 0)),
        weather_failed=int(weather.get("weather_failed", 0)),
        no_location=int(weather.get("no_location", 0)),
        weather_skipped=int(weather.get("weather_skipped", 0)),
        weather_requests=int(weather.get("weather_requests", 0)),
        weather_cache_hits=int(weather.get("weather_cache_hits", 0)),
    )


def _run_error(result) -> str | None:  # noqa: ANN001 - ExecuteInProcessResult
    """The first line of the last step failure of a failed run; None when it succeeded."""
    from dagster import DagsterEventType

    if result.success:
        return None
    failures = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    if not failures:
        return "run failed"
    # The error the step raised, not Dagster's wrapper of it ("Error occurred while ...").
    error = failures[-1].step_failure_data.error
    while error is not None and error.cls_name == "DagsterExecutionStepExecutionError":
        error = error.cause
    message = (error.message if error is not None else "") or "run failed"
    return message.strip().splitlines()[0]


def _sync_request(args: argparse.Namespace) -> dict[str, object]:
    """The seed's SyncRequest from `sync`'s flags: `--after`/`--before` as the months they
    touch (into `args.first`/`args.last`), the options as `SyncOptions` (`options`). Bad
    values raise ValueError before anything is looked up or written (one line, exit 2)."""
    from sync_assets.sync_request import checked_options, months_of_range

    if (args.after, args.before) != (None, None):
        if (args.first, args.last) != (None, None):
            raise ValueError("give --after/--before or --from/--to, not both")
        args.first, args.last = months_of_range(args.after, args.before)
    options = checked_options(
        batch_size=args.batch_size,
        max_retries=args.max_retries,
        skip_weather_enrichment=args.skip_weather or None,
    )
    return {"options": options}


def _print_summary(s: SyncSummary) -> None:
    if not s.success:
        print(f"  user {s.user_id}: FAILED after {s.seconds:.1f} s: {s.error}")
        return
    print(
        f"  user {s.user_id}: {s.activities} activities ({s.quarantined} quarantined) over "
        f"{s.months} months; {s.list_requests} list requests (minimum "
        f"{s.list_requests_minimum}), {s.token_requests} token requests; stored {s.saved} new, "
        f"{s.updated} updated, {s.unchanged} unchanged; {s.seconds:.1f} s; run {s.run_id[:8]}"
    )
    skipped = f", {s.weather_skipped} skipped (asked)" if s.weather_skipped else ""
    print(
        f"    weather: {s.weather_enriched} enriched, {s.weather_pending} pending, "
        f"{s.weather_failed} failed{skipped}, {s.no_location} without coordinates; "
        f"{s.weather_requests} weather requests, {s.weather_cache_hits} cached hours used"
    )


# -- demo ------------------------------------------------------------------------------------
DEMO_SIZES = (750, 1_800)


def demo(
    home: Path | None = None,
    sizes: tuple[int, ...] = DEMO_SIZES,
    seed: int = 7,
    *,
    quiet: bool = False,
) -> int:
    """Offline end to end: sandbox, two connected athletes, their whole history, a summary.

    Always on the embedded default (SQLite + Parquet in `home`), whatever DATABASE_URL says.
    `demo.json` in `home` keeps what `sync-assets ui` needs to open the demo's data in Dagster
    with the same sandboxes (`sync_assets.apps.demo_ui`)."""
    from sync_assets_sandbox import StravaSandbox

    from sync_assets.apps.demo_ui import (
        DEMO_SANDBOX_PORT,
        DemoSettings,
        add_demo_athlete,
        bound_port,
        sandbox_environment,
        save_demo_settings,
        serve_sandbox,
    )

    default_home = settings.data_dir() / "demo"
    home = (home or default_home).resolve()
    if home.exists():
        shutil.rmtree(home)  # the demo always starts from nothing
    home.mkdir(parents=True)
    os.environ["SYNC_ASSETS_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    for name in ("DATABASE_URL", "SYNC_ASSETS_STORAGE_URL"):  # the embedded default, in home
        os.environ.pop(name, None)
    sandbox = StravaSandbox(seed=seed)
    # Every athlete before any request: `sync-assets ui` generates them again the same way.
    athletes = [
        add_demo_athlete(sandbox, index=i, activities=size, seed=seed)
        for i, size in enumerate(sizes)
    ]
    started = time.perf_counter()
    server = serve_sandbox(sandbox, DEMO_SANDBOX_PORT)
    try:
        os.environ.update(sandbox_environment(sandbox, server))
        print(f"Strava and Open-Meteo sandboxes on {server.url}; data in {home}")
        connect_api = connect_oauth = 0
        for (athlete, record), size in zip(athletes, sizes, strict=True):
            api, oauth = sandbox.request_count(kind="api"), sandbox.request_count(kind="oauth")
            connect(record.user_id, refresh_token=athlete.refresh_token)
            connect_api += sandbox.request_count(kind="api") - api
            connect_oauth += sandbox.request_count(kind="oauth") - oauth
            print(
                f"connected user {record.user_id} (Strava athlete {athlete.athlete_id}, "
                f"{size} activities in the sandbox)"
            )
        save_demo_settings(
            home,
            DemoSettings(
                seed=seed, sandbox_port=bound_port(server), athletes=[r for _, r in athletes]
            ),
        )
        summaries = []
        for athlete, record in athletes:
            # From the athlete's first month: earlier months hold nothing to record.
            history = sandbox.activities(athlete.athlete_id)
            first = month_key(datetime.fromisoformat(history[0]["start_date"])) if history else None
            summaries.append(sync(record.user_id, first, quiet=quiet))
        api_requests = sandbox.request_count(kind="api")
        weather_on_wire = server.weather.request_count(kind="archive")
    finally:
        server.stop()
    total = time.perf_counter() - started
    # Each sync's time is its session's (started_at..completed_at), as `sync-assets status`
    # shows it; the wall clock around the runs adds Dagster's start-up of each run.
    print("Summary (each sync's time is its session's, as `sync-assets status` shows it):")
    for s in summaries:
        _print_summary(s)
    activities = sum(s.activities for s in summaries)
    lists = sum(s.list_requests for s in summaries)
    tokens = sum(s.token_requests for s in summaries)
    weather = sum(s.weather_requests for s in summaries)
    synced = sum(s.seconds for s in summaries)
    other = api_requests - lists - connect_api  # e.g. retried list requests
    print(
        f"  total: {activities} activities, {lists} Strava API requests by the syncs (their "
        f"list requests above; + {tokens} token requests), {connect_api} API + {connect_oauth} "
        f"token requests by `connect`"
        + (f", {other} other API requests (retries)" if other else "")
        + f"; {weather} weather requests"
        + (f" ({weather_on_wire} on the wire)" if weather_on_wire != weather else "")
        + f"; {synced:.1f} s of syncs ({activities / synced if synced else 0:.0f} activities/s), "
        f"{total:.1f} s in all with the connects and Dagster's start-up"
    )
    custom = "" if home == default_home.resolve() else f" --home {home}"
    status = "" if home == default_home.resolve() else f"SYNC_ASSETS_HOME={home} "
    print(f"  Parquet under {settings.storage_url()}; Dagster's instance in {home / 'dagster'}")
    print(f"Open it in the Dagster UI (the sandboxes again): sync-assets ui{custom}")
    print(f"Its sync sessions: {status}sync-assets status")
    return 0 if all(s.success for s in summaries) else 1


def ui(home: Path | None = None, port: int = 3000) -> int:
    """`sync-assets ui`: `dagster dev` on the demo's data with its sandboxes (see demo_ui)."""
    from sync_assets.apps.demo_ui import launch_ui

    return launch_ui((home or settings.data_dir() / "demo").resolve(), port)


# -- webhooks --------------------------------------------------------------------------------
def serve_webhooks(host: str, port: int, queue_size: int = 1000, timeout: float = 1.5) -> int:
    """Serve the push-event receiver (and, with SUPABASE_JWT_SECRET set, the OAuth
    endpoints: README, "Connecting from the app") in the foreground until Ctrl-C."""
    from sync_assets.apps.oauth import OAuthSettings, StravaOAuth
    from sync_assets.apps.webhooks import WebhookReceiver, WebhookServer
    from sync_assets.core.storage import open_store

    try:
        oauth_settings = OAuthSettings.from_env()
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    subscription = os.environ.get("STRAVA_WEBHOOK_SUBSCRIPTION_ID")
    # The receiver's store, closed when it stops (after the server has drained its queue).
    with open_store(settings.database_url(), settings.data_dir()) as store:
        receiver = WebhookReceiver(
            store,
            _require_env("STRAVA_WEBHOOK_VERIFY_TOKEN"),
            int(subscription) if subscription else None,
            queue_size=queue_size,
            timeout=timeout,
        )
        oauth = StravaOAuth(oauth_settings, store) if oauth_settings else None
        with WebhookServer(receiver, host, port, oauth=oauth) as server:
            print(f"Strava webhook receiver on {server.url} (Ctrl-C stops it)", flush=True)
            if oauth is not None:
                print(f"Strava OAuth on {server.base_url}/strava/connect", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0


# -- --json ----------------------------------------------------------------------------------
def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the seed's SyncResponse of each user, one JSON object per line, instead of "
        "the summary (stdout holds only the JSON; `sync-assets schema` is its schema)",
    )


def _print_responses(summary: SyncSummary) -> int:
    """`--json`: each session of the run as a SyncResponse line; the exit code says failure."""
    from sync_assets.apps.status import run_responses
    from sync_assets.core.storage import open_store

    with open_store(settings.database_url(), settings.data_dir()) as store:
        lines = run_responses(store, summary.run_id)
    for line in lines:
        print(line)
    if not lines:
        print(f"error: run {summary.run_id} left no sync session: {summary.error}", file=sys.stderr)
        return 1
    return 0 if summary.success else 1


# -- entry point -----------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


# -- the sandbox (its own distribution: sandbox/pyproject.toml) -------------------------------
SANDBOX_MISSING = "the sandbox is not installed: pip install -e ./sandbox (from the repository)"
SANDBOX_COMMANDS = ("demo", "sandbox", "ui")


def _sandbox_installed() -> bool:
    try:
        import sync_assets_sandbox  # noqa: F401
    except ImportError as exc:
        name = exc.name or ""
        if name == "sync_assets_sandbox" or name.startswith("sync_assets_sandbox."):
            return False
        raise  # installed but broken (a dependency missing): one line from main()
    return True


def require_sandbox() -> None:
    """Exit in one line, saying how to install it, when the sandbox is not installed."""
    if not _sandbox_installed():
        raise SystemExit(f"error: {SANDBOX_MISSING}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SANDBOX_COMMANDS and not {"-h", "--help"} & set(argv):
        try:
            require_sandbox()
        except SystemExit as stop:
            print(stop, file=sys.stderr)
            return 1
    if argv[:1] == ["sandbox"] and _sandbox_installed():
        # The sandbox's own options and parser (python -m sync_assets_sandbox's).
        from sync_assets_sandbox.__main__ import main as sandbox_main

        return sandbox_main(argv[1:], prog="sync-assets sandbox")

    parser = _Parser(prog="sync-assets", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p_demo = sub.add_parser("demo", help="offline demo: sandbox, two athletes, whole history")
    p_demo.add_argument("--home", type=Path, help="data folder (default $SYNC_ASSETS_HOME/demo)")
    p_demo.add_argument("--seed", type=int, default=7)
    p_demo.add_argument(
        "--quiet", action="store_true", help="no progress on stderr (the summary still prints)"
    )

    p_sb = sub.add_parser(
        "sandbox",
        help="serve the Strava-compatible sandbox on loopback",
        description="the sandbox's options: python -m sync_assets_sandbox --help ("
        + SANDBOX_MISSING
        + " when missing)",
    )
    p_sb.add_argument("options", nargs=argparse.REMAINDER, help="the sandbox's options")

    p_conn = sub.add_parser("connect", help="register a user's Strava connection")
    p_conn.add_argument("--user", required=True, help="the app's user id (uuid)")
    g = p_conn.add_mutually_exclusive_group(required=True)
    g.add_argument("--refresh-token", help="a Strava refresh token of the athlete")
    g.add_argument("--code", help="an authorization code from Strava's OAuth redirect")
    p_conn.add_argument(
        "--create-auth-user",
        action="store_true",
        help="plain PostgreSQL: add the user to auth.users if missing (on Supabase users sign "
        "up through Supabase Auth)",
    )
    p_conn.add_argument(
        "--scope",
        help="the scopes the athlete granted, from the redirect's `scope=` (e.g. "
        "read,activity:read_all): Strava's token answer does not say",
    )

    p_sync = sub.add_parser("sync", help="materialize a user's months through Dagster")
    p_sync.add_argument("--user", required=True)
    p_sync.add_argument("--from", dest="first", type=_parse_month, help="YYYY-MM (default 2009-01)")
    p_sync.add_argument("--to", dest="last", type=_parse_month, help="YYYY-MM (default: now)")
    p_sync.add_argument(
        "--quiet", action="store_true", help="no progress on stderr (the summary still prints)"
    )
    p_sync.add_argument(
        "--after",
        type=int,
        help="Unix time (the seed's timeRange.after): from its month (instead of --from)",
    )
    p_sync.add_argument(
        "--before",
        type=int,
        help="Unix time (timeRange.before, exclusive): to the month before it (instead of --to)",
    )
    p_sync.add_argument(
        "--batch-size",
        type=int,
        help="rows stored per database transaction (default 5000; 1 to 100000)",
    )
    p_sync.add_argument(
        "--max-retries",
        type=int,
        help="retries of a failed Strava or weather request (1 to 20; default: 5 for Strava, "
        "3 for the weather)",
    )
    p_sync.add_argument(
        "--skip-weather",
        action="store_true",
        help="store the activities without weather (marked skipped); `sync-assets enrich` "
        "fills it in later",
    )
    _json_flag(p_sync)

    p_enrich = sub.add_parser(
        "enrich", help="fill in missing weather of stored months (no Strava request)"
    )
    p_enrich.add_argument("--user", required=True)
    p_enrich.add_argument("--from", dest="first", type=_parse_month, help="YYYY-MM")
    p_enrich.add_argument("--to", dest="last", type=_parse_month, help="YYYY-MM")
    p_enrich.add_argument(
        "--quiet", action="store_true", help="no progress on stderr (the summary still prints)"
    )
    _json_flag(p_enrich)

    p_hook = sub.add_parser("webhook", help="receive Strava's push events (store, answer 200)")
    p_hook.add_argument("--host", default="127.0.0.1")
    p_hook.add_argument("--port", type=int, default=8711)
    p_hook.add_argument(
        "--queue-size", type=int, default=1000, help="events waiting to be stored before 503s"
    )
    p_hook.add_argument(
        "--timeout", type=float, default=1.5, help="seconds an event may wait for its commit"
    )

    sub.add_parser("rotate-keys", help="re-encrypt stored tokens with the newest key")

    p_db = sub.add_parser("db", help="the database: apply the migrations")
    db_sub = p_db.add_subparsers(dest="db_command", required=True)
    p_init = db_sub.add_parser(
        "init", help="apply the migrations to DATABASE_URL (Supabase or plain PostgreSQL)"
    )
    p_init.add_argument(
        "--plain-postgres",
        action="store_true",
        help="first create the Supabase pieces the migrations need (schema auth, auth.users, "
        "auth.uid(), roles, the realtime publication), idempotently",
    )

    p_status = sub.add_parser("status", help="recent sync sessions: state, progress, errors")
    p_status.add_argument("--user", help="only this user's sessions")
    p_status.add_argument("--limit", type=int, default=20)
    p_status.add_argument(
        "--sync-id", help="only this sync: a session's syncId, or a run's id (its users' sessions)"
    )
    p_status.add_argument(
        "--json",
        action="store_true",
        help="the sessions as the seed's SyncResponse, one JSON object per line, newest first",
    )

    sub.add_parser("schema", help="print the JSON Schema of the --json output (SyncResponse)")

    p_ui = sub.add_parser("ui", help="the Dagster UI on the demo's data, with its sandboxes")
    p_ui.add_argument(
        "--home", type=Path, help="the demo's folder (default $SYNC_ASSETS_HOME/demo)"
    )
    p_ui.add_argument("--port", type=int, default=3000, help="the UI's port on loopback")

    args = parser.parse_args(argv)
    # BackfillPolicy is marked beta on Dagster 1.13: a note for developers, not for CLI users.
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "demo":
            return demo(args.home, seed=args.seed, quiet=args.quiet)
        if args.command == "ui":
            return ui(args.home, args.port)
        if args.command == "webhook":
            return serve_webhooks(args.host, args.port, args.queue_size, args.timeout)
        if args.command == "rotate-keys":
            from sync_assets.core.storage import open_store

            with open_store(settings.database_url(), settings.data_dir()) as store:
                count = store.rotate_keys()
            print(f"re-encrypted the tokens of {count} connections with the newest key")
            return 0
        if args.command == "db":
            return init_database(plain_postgres=args.plain_postgres)
        if args.command == "schema":
            from sync_assets.core.responses import schema_text

            sys.stdout.write(schema_text())
            return 0
        if args.command == "status":
            from sync_assets.apps.status import status_json, status_report, sync_id_arg

            if args.user:
                user_arg(args.user)
            if args.limit < 1:
                raise SystemExit(f"error: --limit {args.limit}: give 1 or more")
            sync_id = sync_id_arg(args.sync_id) if args.sync_id else None
            if args.json:
                for line in status_json(args.user, args.limit, sync_id):
                    print(line)
                return 0
            print("\n".join(status_report(args.user, args.limit, sync_id=sync_id)))
            return 0
        if args.command == "connect":
            athlete_id = connect(
                args.user,
                refresh_token=args.refresh_token,
                code=args.code,
                scope=args.scope,
                create_auth_user=args.create_auth_user,
            )
            print(f"connected user {args.user} to Strava athlete {athlete_id}")
            if args.scope is None:
                print(
                    "note: granted scopes not recorded (pass --scope from the OAuth redirect's "
                    "scope=...): a sync cannot tell whether private activities are visible",
                    file=sys.stderr,
                )
            return 0
        if args.command in ("sync", "enrich"):
            run = sync if args.command == "sync" else enrich
            request = _sync_request(args) if args.command == "sync" else {}
            if not args.json:
                summary = run(args.user, args.first, args.last, quiet=args.quiet, **request)
                _print_summary(summary)
                return 0 if summary.success else 1
            # stdout holds the JSON alone: whatever the run prints goes to stderr.
            with contextlib.redirect_stdout(sys.stderr):
                summary = run(args.user, args.first, args.last, quiet=args.quiet, **request)
            return _print_responses(summary)
    except (SyncError, ValueError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an unforeseen failure: one line, the traceback on ask
        if os.environ.get("SYNC_ASSETS_DEBUG"):
            raise
        message = " ".join(str(exc).split())[:300]
        print(
            f"error: unexpected {type(exc).__name__}: {message} (SYNC_ASSETS_DEBUG=1 shows the "
            "traceback)",
            file=sys.stderr,
        )
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
