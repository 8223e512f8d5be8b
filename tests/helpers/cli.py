"""The `sync-assets` CLI (and `dagster dev`) as child processes against the sandboxes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sync_assets_sandbox import SandboxServer, StravaSandbox

# Variables of the parent that would point the children at another instance, database or API.
CHILD_ENV_DROPPED = ("DAGSTER_", "STRAVA_", "WEATHER_", "SYNC_ASSETS_", "OPENWEATHERMAP_")


def sandbox_env(
    sandbox: StravaSandbox, server: SandboxServer, home: Path, **overrides: str
) -> dict[str, str]:
    """The environment of a child process (the CLI, `dagster dev`): the embedded default in
    `home` against the sandboxes. This process's settings of Dagster, Strava, the weather API,
    the project or a database are left out, so nothing sends the child elsewhere; the venv's
    scripts come first on PATH, as in an activated venv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(CHILD_ENV_DROPPED) and k != "DATABASE_URL"
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        SYNC_ASSETS_HOME=str(home),
        STRAVA_CLIENT_ID=sandbox.client_id,
        STRAVA_CLIENT_SECRET=sandbox.client_secret,
        STRAVA_API_URL=server.api_url,
        STRAVA_OAUTH_URL=server.oauth_url,
        WEATHER_API_URL=server.weather_url,
        **overrides,
    )
    return env


CLI = Path(sys.executable).with_name("sync-assets")


def cli_connect(env: dict[str, str], user: str, refresh_token: str) -> None:
    """`sync-assets connect` in a child process, as a user would run it before a sync."""
    out = subprocess.run(
        [CLI, "connect", "--user", user, "--refresh-token", refresh_token],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
