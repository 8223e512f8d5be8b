"""Scaling out on an existing engine: the job's steps on a Celery worker through RabbitMQ.

A real `celery worker` process (dagster-celery's app) takes the steps of a `strava_sync` run
launched with `dagster job execute` against a persistent instance, through the RabbitMQ broker
running on this machine; the run lands every activity.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sync_assets.core.storage import close_stores, open_store
from sync_assets.partitions import month_key

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"


def rabbitmq_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
        return True
    except OSError:
        return False


def test_steps_run_on_a_celery_worker_through_rabbitmq(sandbox, server, tmp_path) -> None:
    if not rabbitmq_up():
        pytest.fail("RabbitMQ is expected on 127.0.0.1:5672 (the machine's services)")
    home = tmp_path / "home"
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    queue = "dagster"  # dagster-celery's default queue
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "SYNC_ASSETS_HOME": str(home),
        "STRAVA_CLIENT_ID": sandbox.client_id,
        "STRAVA_CLIENT_SECRET": sandbox.client_secret,
        "STRAVA_API_URL": server.api_url,
        "STRAVA_OAUTH_URL": server.oauth_url,
        "WEATHER_API_URL": server.weather_url,
        "SYNC_ASSETS_EXECUTOR": "celery",
        "DAGSTER_CELERY_BROKER_URL": BROKER,
    }
    athlete = sandbox.add_athlete(n_activities=300, years=1.0)
    user = str(uuid.uuid4())
    out = subprocess.run(
        [BIN / "sync-assets", "connect", "--user", user, "--refresh-token", athlete.refresh_token],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    # Steps left in the queue by an earlier, interrupted run would go first: clear them.
    subprocess.run(
        [BIN / "celery", "-A", "dagster_celery.app", "-b", BROKER, "purge", "-f", "-Q", queue],
        env=env,
        capture_output=True,
        timeout=60,
    )
    worker = subprocess.Popen(
        [
            BIN / "celery",
            "-A",
            "dagster_celery.app",
            "-b",
            BROKER,
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        now = datetime.fromtimestamp(sandbox.now(), UTC)
        first = month_key(
            datetime.fromisoformat(sandbox.activities(athlete.athlete_id)[0]["start_date"])
        )
        config_file = tmp_path / "run.json"  # JSON is YAML
        config_file.write_text(json.dumps({"execution": {"config": {"backend": "rpc://"}}}))
        run = subprocess.run(
            [
                BIN / "dagster",
                "job",
                "execute",
                "-m",
                "sync_assets.definitions",
                "-j",
                "strava_sync",
                "--tags",
                json.dumps(
                    {
                        "dagster/asset_partition_range_start": f"{first}|{user}",
                        "dagster/asset_partition_range_end": f"{month_key(now)}|{user}",
                    }
                ),
                "--config",
                str(config_file),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        worker.terminate()
        try:
            log, _ = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            log, _ = worker.communicate()
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:] + log[-2000:]
    # The three steps were executed by the worker, not by the launching process.
    assert log.count("succeeded in") >= 3, log[-3000:]
    store = open_store(None, home)
    assert store.run_ids(user) == [a["id"] for a in sandbox.activities(athlete.athlete_id)]
    close_stores()
