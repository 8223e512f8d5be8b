"""What one sync shows: its materialization metadata in the UI, and its rows in the metrics."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet
from dagster import instance_for_test

from sync_assets.core.storage import open_store
from sync_assets.partitions import USERS_PARTITIONS_NAME

from .helpers import (
    RUN_PREFIX,
    connect_user,
    loading_lines,
    make_resources,
    partition_metadata,
    run_metadata,
    stored_partition_metadata,
    sync_range,
    whole_history,
)


def test_a_sync_reads_well_in_the_ui_and_lands_in_the_metrics(
    sandbox, server, pg_url, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    data_dir = tmp_path / "data"
    store = open_store(pg_url, data_dir)
    resources = make_resources(sandbox, server, tmp_path, pg_url, data_dir)
    user, athlete = connect_user(store, sandbox, pg_url, 900, years=2.0)
    sandbox.set_faults(error_5xx_next=1)  # one retried answer: errors and retries show
    first, last = whole_history(sandbox, athlete)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
        result = sync_range(instance, resources, user, first, last)
        assert result.success
        # What the UI reads: the instance's event log holds each month's materialization with
        # the metadata the run gave it, and one log line per input loaded, not one per month.
        for asset in ("raw_strava_activities", "weather_enriched_activities", "runs_table"):
            assert stored_partition_metadata(instance, asset) == partition_metadata(result, asset)
        months = len(partition_metadata(result, "raw_strava_activities"))
        lines = loading_lines(instance, result.run_id)
        assert [line.split(" from ")[0] for line in lines] == [f"Loading {months} partitions"] * 2
    raw = run_metadata(result, "raw_strava_activities")
    enriched = run_metadata(result, "weather_enriched_activities")
    stored = run_metadata(result, "runs_table")
    check_partitions_carry_their_own_counts(result, raw, enriched, stored, first, last, user)

    assert raw["activities"] == 900 and raw["list_requests_minimum"] == 5
    assert raw["requests_vs_minimum"] == (
        f"{raw['list_requests']} list requests for a minimum of 5 (+{raw['token_requests']} "
        f"token, {raw['retries']} retries, {raw['http_requests']} on the wire)"
    )
    assert raw["retries"] == 1 and raw["api_errors"] == 1
    metered = raw["http_requests"] - raw["token_requests"]  # the 500 was metered too
    assert raw["rate_limit_usage_15min"].startswith(f"{metered}/100 (")
    assert raw["api_latency_ms"].startswith("avg ")
    assert enriched["weather_coverage_text"].startswith(
        f"{enriched['weather_coverage']:.1%} of {900 - enriched['no_location']:,} activities"
    )
    assert "per hour" in enriched["weather_quota_usage"]
    table = stored["phase_timings"].splitlines()
    assert table[0].startswith("| phase | seconds | activities | per s | requests |")
    assert [line.split("|")[1].strip() for line in table[2:]] == [
        "fetch (Strava)",
        "enrich (places, weather)",
        "store (runs)",
        "**total**",
    ]

    # The same figures, kept in sync_step_metrics for the views and the alerts.
    since = datetime.now(UTC) - timedelta(hours=1)
    steps = {m.step: m for m in store.step_metrics(since=since)}
    session = store.recent_sessions(user)[0]
    assert {m.sync_id for m in steps.values()} == {session.dagster_run_id}
    fetch = steps["raw_strava_activities"]
    assert (fetch.api, fetch.activities, fetch.api_retries) == ("strava", 900, 1)
    assert fetch.api_requests == raw["http_requests"] and fetch.api_errors == 1
    assert fetch.api_latency_ms_max >= fetch.api_latency_ms_p95 > 0
    weather = steps["weather_enriched_activities"]
    assert weather.api == "weather"
    assert weather.api_quota_used == enriched["weather_calls_charged"]
    assert weather.api_requests == enriched["weather_http_requests"]
    write = steps["runs_table"]
    assert write.rows_written == stored["saved"] == 900 and write.write_seconds > 0
    assert write.db_pool_max == 4 and write.db_pool_timeouts == 0
    health = {row["api"]: row for row in store.metrics_view("sync_api_health")}
    assert health["strava"]["requests"] == raw["http_requests"]
    assert health["strava"]["errors"] == 1
    assert store.metrics_view("sync_success_rate")[0]["success_rate"] == 1.0


# Each asset's own counts of a partition, which add up to the run's figure of the same name.
PARTITION_COUNTS = {
    "raw_strava_activities": ("activities", "quarantined"),
    "weather_enriched_activities": (
        "activities",
        "weather_enriched",
        "weather_pending",
        "weather_failed",
        "no_location",
        "geocoded",
    ),
    "runs_table": ("saved", "updated", "skipped_unchanged", "failed", "quarantined_invalid"),
}


def check_partitions_carry_their_own_counts(
    result, raw: dict, enriched: dict, stored: dict, first: str, last: str, user: str
) -> None:
    """Each month's materialization says what that month holds; the run's figures are the
    `run_` keys, the same on every month, and the months add up to them."""
    months = set(partition_metadata(result, "raw_strava_activities"))
    assert min(months) == f"{first}|{user}" and max(months) == f"{last}|{user}"
    assert len(months) == raw["partitions"] > 12
    for asset, run in (
        ("raw_strava_activities", raw),
        ("weather_enriched_activities", enriched),
        ("runs_table", stored),
    ):
        by_month = partition_metadata(result, asset)
        assert set(by_month) == months, asset
        own = []
        for md in by_month.values():
            figures = {k.removeprefix(RUN_PREFIX): v for k, v in md.items() if k[:4] == RUN_PREFIX}
            assert figures == run, asset  # the run's figures, the same on every month
            own.append({k: v for k, v in md.items() if k[:4] != RUN_PREFIX})
        for key in PARTITION_COUNTS[asset]:
            assert sum(md[key] for md in own) == run[key], (asset, key)
        # A month's plain keys are its own: no run-wide figure among them.
        size = PARTITION_COUNTS[asset][0]
        assert 0 < max(md[size] for md in own) < run[size], asset
        assert not any("partitions" in md or "list_requests" in md for md in own), asset


def test_runs_table_is_labelled_with_the_backend_it_writes() -> None:
    """The asset's kind follows DATABASE_URL when the code location loads: SQLite without it."""
    code = (
        "from sync_assets.assets.runs import runs_table; "
        "print(sorted(runs_table.specs_by_key[runs_table.key].kinds))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    for url, kinds in ((None, "['sqlite']"), ("postgresql://u@127.0.0.1:5432/db", "['postgres']")):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**env, "DATABASE_URL": url} if url else env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == kinds, (url, out.stdout)
