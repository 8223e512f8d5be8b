"""The seed's phase reports and error reports (issue 19): the raw and weather assets' metadata
carry `FetchResponse.metadata` and `EnrichmentResponse.metadata` by the seed's names, a
failed session's `last_error` carries `ErrorReport.context` (the endpoint, its HTTP status,
the retries made; never a secret), and a later sync of the same months marks it resolved."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, instance_for_test

from sync_assets.core.errors import ErrorContext, ErrorInfo, ErrorType
from sync_assets.core.sessions import SessionTracker, SyncState
from sync_assets.core.storage import close_stores, open_store
from sync_assets.partitions import USERS_PARTITIONS_NAME

from .helpers import (
    connect_user,
    make_resources,
    partition_metadata,
    run_metadata,
    sync_range,
    whole_history,
)


def seed_metadata(result: object, asset: str) -> dict[str, object]:
    """What one of the run's materializations of `asset` carries (the run's figures, the
    seed's names among them, are on every partition's), values unwrapped."""
    for m in result.get_asset_materialization_events():
        if m.asset_key.path == [asset]:
            return {k: v.value for k, v in m.materialization.metadata.items()}
    raise AssertionError(f"no materialization of {asset}")


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst
    close_stores()


def test_the_phase_metadata_carries_the_seeds_names(
    sandbox, server, instance, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    resources = make_resources(sandbox, server, tmp_path, None, data_dir)
    store = open_store(None, data_dir)
    user, athlete = connect_user(store, sandbox, None, 450)
    sandbox.set_faults(malformed_activities=3)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    first, last = whole_history(sandbox, athlete)
    result = sync_range(instance, resources, user, first, last)
    assert result.success
    fetch = seed_metadata(result, "raw_strava_activities")
    # Every record Strava's pages carried, less the repeats and those set aside, is listed.
    assert fetch["totalFetched"] >= 450
    assert fetch["filteredCount"] == fetch["run_quarantined"] == 3
    assert (
        fetch["totalFetched"] - fetch["duplicatesSkipped"] - fetch["filteredCount"]
        == fetch["run_activities"]
        == 447
    )
    # The weather step's, month by month (as its other counts): they add up to the run's.
    months = partition_metadata(result, "weather_enriched_activities").values()
    run = run_metadata(result, "weather_enriched_activities")
    assert sum(m["weatherEnriched"] for m in months) == run["weather_enriched"] > 0
    assert sum(m["geocoded"] for m in months) == run["geocoded"]
    assert sum(m["failed"] for m in months) == run["weather_failed"]
    for m in months:
        assert m["weatherEnriched"] + m["failed"] + m["skipped"] == m["activities"]
    assert sum(m["activities"] for m in months) == run["activities"] == 447


def test_a_failed_sync_says_where_and_a_later_sync_resolves_it(
    backend, sandbox, server, instance, tmp_path: Path
) -> None:
    url, data_dir = backend
    resources = make_resources(
        sandbox, server, tmp_path, url, data_dir, max_retries=2, step_retries=0
    )
    store = open_store(url, data_dir)
    user, athlete = connect_user(store, sandbox, url, 300)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    first, last = whole_history(sandbox, athlete)
    sandbox.set_faults(error_5xx_next=1_000)
    failed = sync_range(instance, resources, user, first, last)
    assert not failed.success
    session = store.get_session(failed.run_id, user)
    assert session.status == "failed"
    error = session.last_error
    assert error["type"] == "SERVER" and error["retryable"] is True
    assert error["phase"] == SyncState.FETCHING.value
    assert error["resolved"] is False
    context = error["context"]
    assert context["apiEndpoint"] == "GET /athlete/activities"
    assert context["httpStatus"] in (500, 502, 503)
    assert context["retryCount"] == 2  # the client's max_retries, all spent
    assert context["activityId"] is None and context["batchId"] is None
    stored = json.dumps(error)
    for secret in (athlete.access_token, athlete.refresh_token, sandbox.client_secret):
        assert secret not in stored

    sandbox.clear_faults()
    again = sync_range(instance, resources, user, first, last)
    assert again.success
    assert store.get_session(again.run_id, user).last_error is None
    before = store.get_session(failed.run_id, user)
    assert before.status == "failed"  # what happened stays on record
    assert before.last_error["resolved"] is True
    assert before.last_error["context"] == context


def test_a_re_execution_that_succeeds_resolves_its_own_error(tmp_path: Path) -> None:
    """Re-executions share their session (its root run id): the failure it recorded is kept,
    resolved, when the session completes."""
    store = open_store(None, tmp_path / "data")
    user, run = str(uuid.uuid4()), str(uuid.uuid4())
    tracker = SessionTracker(store, run_id=run, user_id=user)
    tracker.enter(SyncState.FETCHING)
    tracker.fail(
        ErrorInfo(
            type=ErrorType.DATABASE,
            message="storing runs failed",
            retryable=True,
            context=ErrorContext(batch_id="2026-05-01|" + user),
        )
    )
    assert store.get_session(run, user).last_error["context"]["batchId"].startswith("2026-05")
    again = SessionTracker(store, run_id=run, user_id=user)  # the re-execution's step
    again.enter(SyncState.FETCHING)
    done = again.complete()
    assert done.status == "completed" and done.retry_count == 1
    assert done.last_error["resolved"] is True
    assert done.last_error["phase"] == SyncState.FETCHING.value
    close_stores()
