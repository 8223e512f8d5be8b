"""`raw_strava_activities` materialized through Dagster against the sandbox."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import DagsterEventType, DagsterInstance, instance_for_test, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from sync_assets.assets import raw_strava_activities
from sync_assets.partitions import USERS_PARTITIONS_NAME, SyncSpan, month_key

from .helpers import make_resources


@pytest.fixture
def instance():
    with instance_for_test() as inst:
        yield inst


@pytest.fixture
def resources(server, sandbox, token_store, data_dir, tmp_path: Path) -> dict[str, object]:
    return make_resources(sandbox, server, tmp_path, None, data_dir)


def run_range(instance: DagsterInstance, resources, user: str, first: str, last: str):
    return materialize(
        [raw_strava_activities],
        instance=instance,
        resources=resources,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: f"{first}|{user}",
            ASSET_PARTITION_RANGE_END_TAG: f"{last}|{user}",
        },
        raise_on_error=False,
    )


def read_partition(base: Path, month: str, user: str, name: str = "activities"):
    return pq.read_table(base / "raw_strava_activities" / month / user / f"{name}.parquet")


def by_month(activities, year: int) -> Counter:
    return Counter(
        month_key(datetime.fromisoformat(a["start_date"]))
        for a in activities
        if datetime.fromisoformat(a["start_date"]).year == year
    )


def busiest_year(activities) -> int:
    return Counter(datetime.fromisoformat(a["start_date"]).year for a in activities).most_common(1)[
        0
    ][0]


def test_a_year_of_one_user_is_one_run_and_one_query(
    instance, resources, sandbox, connect_athlete, tmp_path
) -> None:
    user, athlete = connect_athlete(2500)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    truth = sandbox.activities(athlete.athlete_id)
    year = busiest_year(truth)
    expected = by_month(truth, year)
    result = run_range(instance, resources, user, f"{year}-01-01", f"{year}-12-01")
    assert result.success
    mats = result.get_asset_materialization_events()
    assert sorted(m.partition for m in mats) == [f"{year}-{m:02d}-01|{user}" for m in range(1, 13)]
    n_year = sum(expected.values())
    md = mats[0].materialization.metadata  # the run's figures: its `run_` keys
    assert md["run_activities"].value == n_year
    assert (
        md["run_list_requests"].value == md["run_list_requests_minimum"].value == n_year // 200 + 1
    )
    assert md["run_strava_queries"].value == 1
    # Each month's own count beside them.
    assert {m.partition: m.materialization.metadata["activities"].value for m in mats} == {
        f"{month}|{user}": expected.get(month, 0)
        for month in (f"{year}-{m:02d}-01" for m in range(1, 13))
    }
    assert sandbox.request_count(kind="api") == n_year // 200 + 1
    base = tmp_path / "parquet"
    for m in range(1, 13):
        month = f"{year}-{m:02d}-01"
        table = read_partition(base, month, user)
        assert table.num_rows == expected.get(month, 0)
        assert table.column("user_id").unique().to_pylist() in ([user], [])
    # One run, seen by the instance as such.
    runs = instance.get_runs()
    assert len(runs) == 1


def test_rerun_is_idempotent_and_partitions_are_single(
    instance, resources, sandbox, connect_athlete, tmp_path
) -> None:
    user, athlete = connect_athlete(400)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    truth = sandbox.activities(athlete.athlete_id)
    month = month_key(datetime.fromisoformat(truth[-1]["start_date"]))
    for _ in range(2):
        result = materialize(
            [raw_strava_activities],
            instance=instance,
            resources=resources,
            partition_key=f"{month}|{user}",
        )
        assert result.success
    table = read_partition(tmp_path / "parquet", month, user)
    expected = [
        a["id"] for a in truth if month_key(datetime.fromisoformat(a["start_date"])) == month
    ]
    assert table.column("strava_id").to_pylist() == expected


def test_malformed_activities_are_quarantined_not_dropped(
    instance, resources, sandbox, connect_athlete, tmp_path
) -> None:
    user, athlete = connect_athlete(600)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    sandbox.set_faults(malformed_activities=5)
    first = month_key(
        datetime.fromisoformat(sandbox.activities(athlete.athlete_id)[0]["start_date"])
    )
    last = month_key(datetime.fromtimestamp(sandbox.now(), UTC))
    result = run_range(instance, resources, user, first, last)
    assert result.success
    md = result.get_asset_materialization_events()[0].materialization.metadata
    assert md["run_quarantined"].value == 5
    assert md["run_activities"].value + md["run_quarantined"].value == 600
    quarantine = read_partition(tmp_path / "parquet", first, user, "quarantine")
    assert quarantine.num_rows == 5
    assert all(
        r and p
        for r, p in zip(
            quarantine.column("reason").to_pylist(),
            quarantine.column("payload").to_pylist(),
            strict=True,
        )
    )


def test_revoked_user_fails_the_run_without_retries_or_secrets(
    instance, resources, sandbox, connect_athlete
) -> None:
    user, athlete = connect_athlete(300)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    sandbox.revoke(athlete.athlete_id)
    result = run_range(instance, resources, user, "2009-01-01", "2009-03-01")
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert "AUTHENTICATION" in failure.step_failure_data.error.message
    assert failure.step_failure_data.user_failure_data.metadata["retryable"].value is False
    restarts = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert restarts == []
    logs = "\n".join(str(e) for e in instance.all_logs(result.run_id))
    for secret in (athlete.refresh_token, athlete.access_token, sandbox.client_secret):
        assert secret not in logs


def test_a_fetch_failing_half_way_fails_the_run_and_keeps_what_it_wrote(
    instance, sandbox, server, connect_athlete, token_store, data_dir, tmp_path
) -> None:
    """Months the listing had passed are on disk (whole) when Strava goes down; the run and the
    session fail, nothing is materialized, the pages stay staged and the next run resumes."""
    resources = make_resources(
        sandbox, server, tmp_path, None, data_dir, step_retries=0, max_retries=0
    )
    user, athlete = connect_athlete(1500, years=4.0)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    truth = sandbox.activities(athlete.athlete_id)
    first = month_key(datetime.fromisoformat(truth[0]["start_date"]))
    last = month_key(datetime.fromtimestamp(sandbox.now(), UTC))
    expected = Counter(month_key(datetime.fromisoformat(a["start_date"])) for a in truth)
    base = tmp_path / "parquet"
    sandbox.set_faults(outage_after_requests=4)  # four pages (oldest first), then down
    failed = run_range(instance, resources, user, first, last)
    assert not failed.success
    assert failed.get_asset_materialization_events() == []
    assert token_store.get_session(failed.run_id, user).status == "failed"
    staged = token_store.staged_pages(user, SyncSpan(user, (first, last)).id)
    assert [p.page for p in staged] == [1, 2, 3, 4]
    written = sorted(p.parent.name for p in base.glob(f"raw_strava_activities/*/{user}"))
    # The oldest months (but the span's first, written last), whole; none of the newest.
    assert written and first not in written and last not in written, written
    for month in written:
        assert read_partition(base, month, user).num_rows == expected.get(month, 0)

    sandbox.clear_faults()
    again = run_range(instance, resources, user, first, last)
    assert again.success
    md = again.get_asset_materialization_events()[0].materialization.metadata
    assert md["run_resumed_from_checkpoint"].value > 3 * 199
    assert md["run_activities"].value == 1500
    months = [p.parent.name for p in base.glob(f"raw_strava_activities/*/{user}")]
    ids = [i for m in months for i in read_partition(base, m, user).column("strava_id").to_pylist()]
    assert sorted(ids) == sorted(a["id"] for a in truth)
    assert list(base.rglob("*.tmp")) == []  # every file renamed into place
