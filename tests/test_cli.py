"""The command line as users run it: separate processes, the sandbox served on its own."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pyarrow.parquet as pq

from .helpers import loading_lines

BIN = Path(sys.executable).with_name("sync-assets")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_runs_the_main_job_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRAVA_", "DAGSTER_"))}
    env["SYNC_ASSETS_HOME"] = str(tmp_path)
    out = subprocess.run([BIN, "demo"], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "FAILED" not in out.stdout
    totals = re.search(r"total: (\d+) activities, (\d+) Strava API requests", out.stdout)
    assert totals, out.stdout
    activities = int(totals.group(1))
    assert activities > 2000
    for asset in ("raw_strava_activities", "weather_enriched_activities"):
        files = list((tmp_path / "demo" / "parquet" / asset).rglob("activities.parquet"))
        assert sum(pq.read_metadata(f).num_rows for f in files) == activities
    weather = re.findall(r"weather: (\d+) enriched, (\d+) pending, (\d+) failed", out.stdout)
    assert len(weather) == 2 and all(int(w[0]) > 300 and w[2] == "0" for w in weather)
    assert re.search(r"(\d+) weather requests", out.stdout)
    # One source per figure: the total's requests are the users' lines', each sync's time is
    # its session's (the progress and `status` say the same).
    lists = [int(n) for n in re.findall(r"; (\d+) list requests \(minimum", out.stdout)]
    assert len(lists) == 2 and int(totals.group(2)) == sum(lists), out.stdout
    took = re.findall(r"; ([\d.]+) s; run ", out.stdout)
    ends = re.findall(r"^completed in ([\d.]+) s(?: \(\d+ min \d\d s\))?$", out.stderr, re.M)
    assert len(took) == 2 and took == ends, out.stdout + out.stderr
    assert len(re.findall(r"^fetching: \d[\d,]* activities in \d+ pages$", out.stderr, re.M)) == 2
    assert "sync-assets ui" in out.stdout
    # `status` finds the demo's sessions (its folder is not the default data's), users apart.
    status = subprocess.run([BIN, "status"], env=env, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert "the demo's" in lines[0] and len(lines) == 3, status.stdout
    shown = {line.split()[2] for line in lines[1:]}
    assert len(shown) == 2, status.stdout


def check_instance_holds_the_run(home: Path) -> None:
    """The sync's events are in its Dagster instance (the UI's source): every month of every
    asset materialized (the CLI writes a range run's asset events in batches), and one log
    line per input the Parquet IO manager loaded."""
    from dagster import AssetKey, DagsterInstance

    now = datetime.now(UTC)
    months = (now.year - 2009) * 12 + now.month
    instance = DagsterInstance.from_config(str(home))
    try:
        for asset in ("raw_strava_activities", "weather_enriched_activities", "runs_table"):
            assert len(instance.get_materialized_partitions(AssetKey(asset))) == months, asset
        (run,) = instance.get_runs()
        assert len(loading_lines(instance, run.run_id)) == 2
    finally:
        instance.dispose()


def test_sandbox_connect_and_sync_as_separate_processes(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRAVA_", "DAGSTER_"))}
    sandbox = subprocess.Popen(
        [BIN, "sandbox", "--port", str(port), "--athletes", "1", "--sizes", "420", "--seed", "3"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{base}/_sandbox/usage", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        athlete = httpx.get(f"{base}/_sandbox/athletes").json()[0]
        env.update(
            {
                "SYNC_ASSETS_HOME": str(tmp_path),
                "STRAVA_CLIENT_ID": "sandbox-client",
                "STRAVA_CLIENT_SECRET": "sandbox-secret",
                "STRAVA_API_URL": f"{base}/api/v3",
                "STRAVA_OAUTH_URL": f"{base}/oauth/token",
                "WEATHER_API_URL": f"{base}/v1/archive",
            }
        )
        user = "2b0e6a57-8f0c-4c55-9a43-5a1c0f1e9d01"
        out = subprocess.run(
            [BIN, "connect", "--user", user, "--refresh-token", athlete["refresh_token"]],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert f"Strava athlete {athlete['athlete_id']}" in out.stdout
        out = subprocess.run(
            [BIN, "sync", "--user", user], env=env, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "420 activities" in out.stdout
        assert "3 list requests (minimum 3)" in out.stdout
        assert "stored 420 new, 0 updated, 0 unchanged" in out.stdout
        # Progress on stderr, a line per phase (stderr is no terminal here), from the session;
        # the summary's time is the session's, as the progress (and `status`) say it.
        progress = [line for line in out.stderr.splitlines() if not line.startswith("{")]
        took = re.search(r"; ([\d.]+) s; run ", out.stdout)
        assert took, out.stdout
        assert progress == [
            "fetching: 420 activities in 3 pages",
            progress[1],
            "storing: 420 rows (420 new)",
            f"completed in {took.group(1)} s",
        ], out.stderr
        assert re.fullmatch(
            r"enriching: \d+ activities with weather, \d+ weather requests?", progress[1]
        )
        weather = re.search(r"weather: (\d+) enriched, (\d+) pending, (\d+) failed", out.stdout)
        assert weather and int(weather.group(1)) > 250 and weather.group(3) == "0", out.stdout
        check_instance_holds_the_run(tmp_path / "dagster")

        # Weather again, from the stored activities: no Strava request, all from the cache.
        def strava_requests() -> int:
            log = httpx.get(f"{base}/_sandbox/requests").json()
            return sum(1 for r in log if r["kind"] in ("api", "oauth"))

        before = strava_requests()
        out = subprocess.run(
            [BIN, "enrich", "--user", user, "--quiet"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stderr == ""  # --quiet: no progress; the summary still prints
        assert strava_requests() == before
        assert f"{weather.group(1)} enriched" in out.stdout
        # Strava's OAuth code exchange registers a second user.
        other = "2b0e6a57-8f0c-4c55-9a43-5a1c0f1e9d02"
        out = subprocess.run(
            [BIN, "connect", "--user", other, "--code", athlete["authorization_code"]],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        out = subprocess.run(
            [BIN, "connect", "--user", other, "--code", "used-or-bogus"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 2 and "authorization code" in out.stderr
        # A user that was never connected gets a clear error, not a traceback.
        nobody = "0c7d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f"
        out = subprocess.run(
            [BIN, "sync", "--user", nobody], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode != 0 and "not connected" in out.stdout + out.stderr
        assert "Traceback" not in out.stderr
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
