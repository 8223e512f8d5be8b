"""`sync-assets ui`: the Dagster UI on the demo's own data, with everything it needs.

`sync-assets demo` leaves its data in a folder (default `$SYNC_ASSETS_HOME/demo`): the SQLite
database, the Parquet files, the Dagster instance (`dagster/`) and `demo.json`, what it takes to
bring its sandboxes back: the seed, the athletes' sizes, the sandbox clock each athlete was
generated at (`StravaSandbox.set_clock`: an athlete's history ends "now", so the same clock gives
the same activities), the athlete and user ids, the sandbox's port. No secret is in it: the
sandbox's state lives in memory and its tokens are random.

`launch_ui` starts the Strava and Open-Meteo sandboxes again on that port (another one if it is
taken) with the same athletes, saves each user's connection with the new tokens, writes the
instance settings that matter (`INSTANCE_SETTINGS`: those of the repository's `dagster.yaml` and
the JSON run logs of UI launches), records one evaluation of `sync_health`'s checks, and runs
`dagster dev` in the foreground on the demo's folder: the graph, partitions, checks and runs
show the demo's data, and a backfill launched from the UI syncs against the sandboxes. Ctrl-C
stops both.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import yaml

from sync_assets.apps.status import DEMO_SETTINGS

if TYPE_CHECKING:
    from sync_assets_sandbox import AthleteHandle, SandboxServer, StravaSandbox

DEMO_SANDBOX_PORT = 8712  # beside `sync-assets sandbox` (8710) and `webhook` (8711)
UI_PORT = 3000
LOCATION_NAME = "sync_assets"  # as workspace.yaml names it
WORKSPACE = "workspace.yaml"
# The settings of the repository's dagster.yaml that matter for the demo's instance (queued
# runs within the concurrency limits, the API pools, run monitoring, no telemetry), and the
# instance class that makes runs launched from the UI log JSON (`sync_assets.logs`).
INSTANCE_SETTINGS: dict[str, Any] = {
    "telemetry": {"enabled": False},
    "run_coordinator": {
        "module": "dagster.core.run_coordinator",
        "class": "QueuedRunCoordinator",
    },
    "concurrency": {
        "runs": {
            "max_concurrent_runs": 4,
            "tag_concurrency_limits": [
                {"key": "sync_assets/sync_type", "value": "backfill", "limit": 3},
                {
                    "key": "sync_assets/user",
                    "value": {"applyLimitPerUniqueValue": True},
                    "limit": 1,
                },
            ],
        },
        "pools": {"default_limit": 2},
    },
    "run_monitoring": {"enabled": True, "free_slots_after_run_end_seconds": 300},
    "instance_class": {"module": "sync_assets.logs", "class": "JsonLogsInstance"},
}
# `dagster dev` started through this shim (it becomes `dagster dev`, same pid): a shell that
# runs jobs in the background leaves SIGINT ignored, an ignored signal stays ignored across
# exec, and dagster dev maps SIGTERM to SIGINT's handler. (No `preexec_fn`: the sandbox's
# threads are running.)
_EXEC_WITH_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


# -- the demo's settings ---------------------------------------------------------------------
@dataclass
class DemoAthlete:
    """One demo athlete: how to generate it again, and what it must come out as."""

    user_id: str
    athlete_id: int
    activities: int
    seed: int
    clock: int  # the sandbox's clock (epoch seconds) when it was generated
    first_activity_id: int | None = None
    last_activity_id: int | None = None


@dataclass
class DemoSettings:
    seed: int
    sandbox_port: int
    athletes: list[DemoAthlete] = field(default_factory=list)
    version: int = 1


def demo_user_id(seed: int, index: int) -> str:
    """The app's user id of the demo's `index`-th athlete: a uuid whose first group already
    tells the demo's users apart (`00000701-...`, `00000702-...` for seed 7), whose last group
    reads as `seed * 1000 + index + 1`."""
    first = f"{seed % 1_000_000:06d}{(index + 1) % 100:02d}"
    return str(uuid.UUID(f"{first}-0000-4000-8000-{(seed * 1000 + index + 1) % 10**12:012d}"))


def settings_path(home: Path) -> Path:
    return home / DEMO_SETTINGS


def save_demo_settings(home: Path, settings: DemoSettings) -> Path:
    """`demo.json` in the demo's folder (no secret: sandbox state is in memory)."""
    path = settings_path(home)
    path.write_text(json.dumps(asdict(settings), indent=2) + "\n")
    return path


def load_demo_settings(home: Path) -> DemoSettings:
    path = settings_path(home)
    if not path.is_file():
        raise SystemExit(
            f"error: no demo in {home} ({path.name} is missing): run `sync-assets demo` first"
        )
    data = json.loads(path.read_text())
    athletes = [DemoAthlete(**a) for a in data.pop("athletes", [])]
    return DemoSettings(athletes=athletes, **data)


# -- the sandboxes ---------------------------------------------------------------------------
def add_demo_athlete(
    sandbox: StravaSandbox, *, index: int, activities: int, seed: int, clock: int | None = None
) -> tuple[AthleteHandle, DemoAthlete]:
    """The demo's `index`-th athlete (`seed`: the demo's), generated at sandbox time `clock`
    (now, rounded, when None) from `seed + index`: the same arguments, in the same order on a
    sandbox of the same seed that has served no request yet, give the same athlete."""
    clock = int(sandbox.now()) if clock is None else clock
    sandbox.set_clock(clock)  # the athlete's history ends at this second
    handle = sandbox.add_athlete(n_activities=activities, seed=seed + index)
    history = sandbox.activities(handle.athlete_id)
    record = DemoAthlete(
        user_id=demo_user_id(seed, index),
        athlete_id=handle.athlete_id,
        activities=activities,
        seed=seed + index,
        clock=clock,
        first_activity_id=history[0]["id"] if history else None,
        last_activity_id=history[-1]["id"] if history else None,
    )
    return handle, record


def bound_port(server: SandboxServer) -> int:
    """The port the sandboxes listen on (the one asked for, or the free one found)."""
    return int(server.url.rsplit(":", 1)[1])


def serve_sandbox(sandbox: StravaSandbox, port: int) -> SandboxServer:
    """The sandboxes on loopback `port`, or on a free port when that one is taken."""
    from sync_assets_sandbox import SandboxServer

    try:
        return SandboxServer(sandbox, port=port).start()
    except OSError:
        return SandboxServer(sandbox, port=0).start()


def restore_sandbox(settings: DemoSettings) -> tuple[StravaSandbox, list[AthleteHandle]]:
    """A sandbox with the demo's athletes generated again, its clock back on real time."""
    from sync_assets_sandbox import StravaSandbox

    sandbox = StravaSandbox(seed=settings.seed)
    handles = []
    for i, saved in enumerate(settings.athletes):
        handle, again = add_demo_athlete(
            sandbox,
            index=i,
            activities=saved.activities,
            seed=settings.seed,
            clock=saved.clock,
        )
        if (again.athlete_id, again.first_activity_id, again.last_activity_id) != (
            saved.athlete_id,
            saved.first_activity_id,
            saved.last_activity_id,
        ):
            raise SystemExit(
                f"error: the sandbox's athlete {saved.athlete_id} came out different from the "
                "demo's: run `sync-assets demo` again"
            )
        handles.append(handle)
    sandbox.set_clock(time.time())  # new activities and tokens on today's clock
    return sandbox, handles


def sandbox_environment(sandbox: StravaSandbox, server: SandboxServer) -> dict[str, str]:
    """The variables that point the pipeline at the sandboxes."""
    return {
        "STRAVA_CLIENT_ID": sandbox.client_id,
        "STRAVA_CLIENT_SECRET": sandbox.client_secret,
        "STRAVA_API_URL": server.api_url,
        "STRAVA_OAUTH_URL": server.oauth_url,
        "WEATHER_API_URL": server.weather_url,
    }


def save_connections(home: Path, settings: DemoSettings, handles: list[AthleteHandle]) -> None:
    """Each demo user's connection with its athlete's new tokens (the old ones died with the
    demo's sandbox)."""
    from sync_assets.core.clients.tokens import StravaTokens
    from sync_assets.core.storage import open_store

    with open_store(None, home) as store:
        for saved, handle in zip(settings.athletes, handles, strict=True):
            store.save_connection(
                saved.user_id,
                StravaTokens(
                    access_token=handle.access_token,
                    refresh_token=handle.refresh_token,
                    expires_at=handle.expires_at,
                ),
                athlete_id=handle.athlete_id,
                scopes=handle.scopes,
            )


# -- the Dagster instance and workspace ------------------------------------------------------
def write_instance_settings(dagster_home: Path) -> Path:
    """`dagster.yaml` of the demo's instance: its own settings (storage) kept, those of
    `INSTANCE_SETTINGS` set."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    path = dagster_home / "dagster.yaml"
    current = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    path.write_text(
        "# The demo's Dagster instance, written by `sync-assets ui` (sync_assets.apps.demo_ui).\n"
        + yaml.safe_dump({**current, **INSTANCE_SETTINGS}, sort_keys=False)
    )
    return path


def write_workspace(home: Path) -> Path:
    """A workspace.yaml in the demo's folder: the code location, wherever the package is."""
    path = home / WORKSPACE
    location = {"module_name": "sync_assets.definitions", "location_name": LOCATION_NAME}
    path.write_text(yaml.safe_dump({"load_from": [{"python_module": location}]}, sort_keys=False))
    return path


def prepare_instance(home: Path, settings: DemoSettings, environment: dict[str, str]) -> int:
    """The demo's users as partitions (they are, unless the instance was wiped) and one
    evaluation of `sync_health`'s checks recorded before the UI opens (the sensor keeps them
    fresh afterwards), so the asset page shows verdicts at once. Returns how many."""
    from dagster import DagsterInstance

    from sync_assets.partitions import USERS_PARTITIONS_NAME
    from sync_assets.resources import StravaResource, SupabaseResource, WeatherResource
    from sync_assets.sensors.alerts import check_evaluations

    supabase = SupabaseResource(database_url=None, data_dir=str(home))
    strava = StravaResource(
        client_id=environment["STRAVA_CLIENT_ID"],
        client_secret=environment["STRAVA_CLIENT_SECRET"],
        api_url=environment["STRAVA_API_URL"],
        oauth_url=environment["STRAVA_OAUTH_URL"],
        supabase=supabase,
    )
    weather = WeatherResource(api_url=environment["WEATHER_API_URL"])
    evaluations = check_evaluations(supabase, strava, weather)
    instance = DagsterInstance.from_config(str(home / "dagster"))
    try:
        users = [a.user_id for a in settings.athletes]
        instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, users)
        for evaluation in evaluations:
            instance.report_runless_asset_event(evaluation)
    finally:
        instance.dispose()
    return len(evaluations)


# -- sync-assets ui --------------------------------------------------------------------------
def ui_environment(home: Path, sandbox_env: dict[str, str]) -> dict[str, str]:
    """The environment of `dagster dev`: the demo's folder, its instance, the sandboxes, the
    embedded default (a `DATABASE_URL` or storage URL of the shell would send it elsewhere)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "SYNC_ASSETS_STORAGE_URL", "DAGSTER_HOME")
    }
    env.update(SYNC_ASSETS_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), **sandbox_env)
    return env


def dagster_dev_command(workspace: Path, host: str, port: int) -> list[str]:
    dagster = Path(sys.executable).with_name("dagster")
    args = ["dev", "-w", str(workspace), "-h", host, "-p", str(port)]
    return [sys.executable, "-c", _EXEC_WITH_SIGINT, str(dagster), *args]


def launch_ui(
    home: Path,
    port: int = UI_PORT,
    host: str = "127.0.0.1",
    *,
    out: TextIO | None = None,
    stop_grace: float = 30.0,
) -> int:
    """`sync-assets ui`: the sandboxes again, the users' connections renewed, `dagster dev` on
    the demo's folder in the foreground until Ctrl-C (or SIGTERM); returns its exit status."""
    out = out or sys.stdout
    home = home.resolve()
    settings = load_demo_settings(home)
    sandbox, handles = restore_sandbox(settings)
    server = serve_sandbox(sandbox, settings.sandbox_port)
    try:
        save_connections(home, settings, handles)  # its store closed before dagster dev starts
        sandbox_env = sandbox_environment(sandbox, server)
        write_instance_settings(home / "dagster")
        workspace = write_workspace(home)
        prepare_instance(home, settings, sandbox_env)
        moved = "" if bound_port(server) == settings.sandbox_port else " (its port was taken)"
        print(f"Strava and Open-Meteo sandboxes on {server.url}{moved}", file=out)
        for saved in settings.athletes:
            print(
                f"  user {saved.user_id}: Strava athlete {saved.athlete_id}, "
                f"{saved.activities} activities",
                file=out,
            )
        print(
            f"Dagster UI on http://{host}:{port} with the demo's data in {home} "
            "(Ctrl-C stops it and the sandboxes)",
            file=out,
            flush=True,
        )
        proc = subprocess.Popen(
            dagster_dev_command(workspace, host, port),
            cwd=home,
            env=ui_environment(home, sandbox_env),
            stdin=subprocess.DEVNULL,
        )
        return _wait(proc, stop_grace)
    finally:
        server.stop()


def _wait(proc: subprocess.Popen[bytes], grace: float) -> int:
    """Wait for `dagster dev`; SIGTERM and Ctrl-C stop it (it stops what it started)."""

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # Ctrl-C in a terminal reached dagster dev too; SIGTERM came to this process only.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
