"""Every bad input to the real CLI gets one line on stderr, a non-zero exit and leaves nothing.

Each case runs `sync-assets` in a child process on the embedded default (against the
sandboxes): its exit code, its one stderr line (no traceback), and afterwards no Dagster run,
no sync session and no connection beyond the one the fixture made.
"""

from __future__ import annotations

import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest
from dagster import DagsterInstance

from .helpers import CLI, cli_connect, sandbox_env

KNOWN = "6f1c2a4e-8b3d-4f5e-9a7b-1c2d3e4f5a6b"  # connected by the fixture
UNKNOWN = "0c7d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f"  # never connected


@pytest.fixture
def env(sandbox, server, tmp_path) -> dict[str, str]:
    athlete = sandbox.add_athlete(n_activities=3)
    env = sandbox_env(sandbox, server, tmp_path / "home")
    cli_connect(env, KNOWN, athlete.refresh_token)
    env["DAGSTER_HOME"] = str(tmp_path / "home" / "dagster")
    return env


# (name, argv, environment changes, exit code, what the line says)
CASES = [
    ("months before Strava", ["sync", "--user", KNOWN, "--from", "2000-01", "--to", "2000-06"],
     {}, 1, "--to 2000-06 is before 2009-01, Strava's first month"),
    ("inverted range", ["sync", "--user", KNOWN, "--from", "2016-05", "--to", "2016-02"],
     {}, 1, "--from 2016-05 is after --to 2016-02"),
    ("inverted range, unknown user", ["sync", "--user", UNKNOWN, "--from", "2016-05", "--to",
     "2016-02"], {}, 1, "--from 2016-05 is after --to 2016-02"),
    ("a month to come", ["sync", "--user", KNOWN, "--to", "2099-01"], {}, 1,
     "--to 2099-01 is after the current month"),
    ("not a month", ["sync", "--user", KNOWN, "--from", "2016-13"], {}, 2,
     "'2016-13' is not YYYY-MM"),
    ("unknown user", ["sync", "--user", UNKNOWN], {}, 1, f"user {UNKNOWN} is not connected"),
    ("user not a uuid", ["sync", "--user", "not-a-uuid"], {}, 2, "is not a uuid"),
    ("enrich, inverted range", ["enrich", "--user", KNOWN, "--from", "2016-05", "--to",
     "2016-02"], {}, 1, "--from 2016-05 is after --to 2016-02"),
    ("connect, user not a uuid", ["connect", "--user", "not-a-uuid", "--refresh-token", "x"],
     {}, 2, "is not a uuid"),
    ("connect, refused refresh token", ["connect", "--user", UNKNOWN, "--refresh-token",
     "not-a-token"], {}, 2, "Strava refused the refresh token"),
    ("connect, refused code", ["connect", "--user", UNKNOWN, "--code", "not-a-code"], {}, 2,
     "Strava refused the authorization code"),
    ("connect, no activity scope", ["connect", "--user", UNKNOWN, "--code", "x", "--scope",
     "read"], {}, 2, "PERMISSION_DENIED"),
    ("connect, no credential", ["connect", "--user", UNKNOWN], {}, 2,
     "one of the arguments --refresh-token --code is required"),
    ("connect, no client id", ["connect", "--user", UNKNOWN, "--refresh-token", "x"],
     {"STRAVA_CLIENT_ID": ""}, 1, "set STRAVA_CLIENT_ID"),
    ("wrong client secret", ["connect", "--user", UNKNOWN, "--refresh-token", "x"],
     {"STRAVA_CLIENT_SECRET": "wrong"}, 2, "Strava rejected the application credentials"),
    ("status, limit 0", ["status", "--limit", "0"], {}, 1, "--limit 0: give 1 or more"),
    ("status, user not a uuid", ["status", "--user", "nope"], {}, 2, "is not a uuid"),
    ("unknown command", ["frobnicate"], {}, 2, "invalid choice: 'frobnicate'"),
    ("bad log format", ["sync", "--user", KNOWN, "--from", "2026-01"],
     {"SYNC_ASSETS_LOG_FORMAT": "xml"}, 2, "SYNC_ASSETS_LOG_FORMAT must be json or text"),
    ("database URL not PostgreSQL", ["status"], {"DATABASE_URL": "mysql://nope"}, 2,
     "DATABASE_URL is not a PostgreSQL URL"),
]  # fmt: skip


def left_behind(env: dict[str, str]) -> tuple[int, int, int]:
    """(Dagster runs, sync sessions, Strava connections) of the embedded default."""
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        runs = instance.get_runs_count()
    with sqlite3.connect(Path(env["SYNC_ASSETS_HOME"]) / "sync_assets.db") as db:
        sessions = db.execute("select count(*) from sync_sessions").fetchone()[0]
        connections = db.execute("select count(*) from strava_connections").fetchone()[0]
    return runs, sessions, connections


def test_every_bad_input_is_one_line_a_non_zero_exit_and_nothing_left(env, capsys) -> None:
    assert left_behind(env) == (0, 0, 1)
    table = []
    for name, argv, changes, code, says in CASES:
        out = subprocess.run(
            [CLI, *argv], env={**env, **changes}, capture_output=True, text=True, timeout=120
        )
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert "Traceback" not in out.stderr, (name, out.stderr)
        assert len(lines) == 1, (name, out.stderr)
        assert out.returncode == code, (name, out.returncode, lines)
        assert says in lines[0], (name, lines[0])
        assert left_behind(env) == (0, 0, 1), name
        table.append((name, " ".join(["sync-assets", *argv]), out.returncode, lines[0]))
    with capsys.disabled():
        print("\n| input | command | exit | stderr |\n| --- | --- | ---: | --- |")
        for name, command, code, line in table:
            print(f"| {name} | `{command}` | {code} | {line} |")


def test_months_before_strava_are_clamped_with_a_note(env) -> None:
    """`--from` before 2009 with a `--to` after it: synced from 2009-01, said on stderr."""
    out = subprocess.run(
        [CLI, "sync", "--user", KNOWN, "--from", "2000-01", "--to", "2009-02"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "note: --from 2000-01 is before 2009-01 (Strava's start): from 2009-01" in out.stderr
    assert "over 2 months" in out.stdout


def test_status_on_postgres_reads_no_token_and_needs_no_key(pg_url, tmp_path) -> None:
    from cryptography.fernet import Fernet

    from sync_assets.core.sessions import SessionTracker, SyncState
    from sync_assets.core.storage import close_stores, open_store

    from .helpers import add_users

    user = str(uuid.uuid4())
    add_users(pg_url, user)
    import os

    os.environ["SYNC_ASSETS_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    try:
        store = open_store(pg_url, tmp_path)
        SessionTracker(store, run_id="r1", user_id=user).enter(SyncState.FETCHING)
    finally:
        del os.environ["SYNC_ASSETS_ENCRYPTION_KEYS"]
        close_stores()
    env = {"PATH": str(Path(CLI).parent) + ":/usr/bin:/bin", "DATABASE_URL": pg_url}
    env["SYNC_ASSETS_HOME"] = str(tmp_path / "home")
    out = subprocess.run([CLI, "status"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "fetching_activities" in out.stdout and user[:8] in out.stdout
