"""A backfill launched through Dagster's own machinery: instance + backfill daemon + run workers.

This is the path the UI takes, and the one where Dagster decides how a multi-partition range
is split into runs; `materialize()` alone would not show it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from sync_assets.core.clients.tokens import StravaTokens
from sync_assets.core.storage import open_store
from sync_assets.partitions import USERS_PARTITIONS_NAME, month_key

from .helpers.daemon import REPO, add_backfill, instance_at
from .helpers.daemon import dagster_home as make_dagster_home


def test_backfill_of_two_users_over_a_year_runs_once_per_user(
    sandbox, server, tmp_path: Path
) -> None:
    home, dagster_home = tmp_path / "data", make_dagster_home(tmp_path)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "SYNC_ASSETS_HOME": str(home),
        "STRAVA_CLIENT_ID": sandbox.client_id,
        "STRAVA_CLIENT_SECRET": sandbox.client_secret,
        "STRAVA_API_URL": server.api_url,
        "STRAVA_OAUTH_URL": server.oauth_url,
        "WEATHER_API_URL": server.weather_url,
    }
    store = open_store(None, home)
    users, truth = [], {}
    for i, size in enumerate((900, 300)):
        athlete = sandbox.add_athlete(n_activities=size, seed=50 + i)
        user = f"00000000-0000-4000-8000-00000000000{i + 1}"
        store.save_connection(
            user,
            StravaTokens(
                access_token=athlete.access_token,
                refresh_token=athlete.refresh_token,
                expires_at=athlete.expires_at,
            ),
        )
        users.append(user)
        truth[user] = sandbox.activities(athlete.athlete_id)
    year = datetime.fromtimestamp(sandbox.now(), UTC).year - 1
    keys = [f"{year}-{m:02d}-01|{u}" for u in users for m in range(1, 13)]

    instance = instance_at(dagster_home)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, users)
    backfill_id = add_backfill(instance, keys, "test year")

    daemon = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("dagster-daemon")),
            "run",
            "-w",
            str(REPO / "workspace.yaml"),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            status = instance.get_backfill(backfill_id).status
            if status != BulkActionStatus.REQUESTED:
                break
            time.sleep(2)
    finally:
        daemon.terminate()
        _, err = daemon.communicate(timeout=60)
    assert status == BulkActionStatus.COMPLETED_SUCCESS, err.decode()[-3000:]

    runs = instance.get_runs()
    assert len(runs) == 2  # one per user, each over the 12 months
    ranges = sorted(
        (r.tags[ASSET_PARTITION_RANGE_START_TAG], r.tags[ASSET_PARTITION_RANGE_END_TAG])
        for r in runs
    )
    assert ranges == sorted((f"{year}-01-01|{u}", f"{year}-12-01|{u}") for u in users)

    expected_requests = 0
    for user in users:
        in_year = [a for a in truth[user] if a["start_date"].startswith(str(year))]
        expected_requests += len(in_year) // 200 + 1
        counts = Counter(month_key(datetime.fromisoformat(a["start_date"])) for a in in_year)
        for m in range(1, 13):
            month = f"{year}-{m:02d}-01"
            path = home / "parquet" / "raw_strava_activities" / month / user / "activities.parquet"
            ids = pq.read_table(path).column("strava_id").to_pylist()
            assert ids == [
                a["id"]
                for a in in_year
                if month_key(datetime.fromisoformat(a["start_date"])) == month
            ]
            assert len(ids) == counts.get(month, 0)
        # ... and in `runs`, every activity of the year exactly once, with its weather.
        assert sorted(store.run_ids(user)) == sorted(a["id"] for a in in_year)
    # Exactly one paginated query per user: the minimum number of list requests.
    assert sandbox.request_count(kind="api", path_prefix="/api/v3/athlete/activities") == (
        expected_requests
    )
