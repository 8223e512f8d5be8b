"""The seed's SyncRequest options (`SyncOptions`) as the launchpad, the CLI and the sensors
give them: batch size, request retries, skipping the weather; bad values refused."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from dagster import DagsterInstance, Definitions, instance_for_test, validate_run_config
from dagster._core.test_utils import create_run_for_test

from sync_assets.apps.demo_ui import INSTANCE_SETTINGS
from sync_assets.assets import raw_strava_activities, runs_table, weather_enriched_activities
from sync_assets.core.storage import open_store
from sync_assets.dagster_private import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from sync_assets.definitions import defs, weather_enrichment_job
from sync_assets.partitions import USERS_PARTITIONS_NAME
from sync_assets.sensors.requests import range_run_request
from sync_assets.sync_request import (
    ENRICHMENT_OPTION_ASSETS,
    SYNC_OPTION_ASSETS,
    SyncOptions,
    checked_options,
    months_of_range,
    options_run_config,
)

from .helpers import (
    CLI,
    cli_connect,
    connect_user,
    make_resources,
    partition_metadata,
    run_metadata,
    sandbox_env,
    sync_range,
    whole_history,
)

USER = "6f1c2a4e-8b3d-4f5e-9a7b-1c2d3e4f5a6b"


def option_fields(job_name: str, asset: str) -> dict[str, object]:
    """The launchpad's fields of an asset's config in a job's run config schema."""
    ops = defs.resolve_job_def(job_name).run_config_schema.config_type.fields["ops"]
    return ops.config_type.fields[asset].config_type.fields["config"].config_type.fields


def test_the_launchpad_shows_the_options_with_defaults_and_descriptions() -> None:
    for job, assets in (
        ("strava_sync", SYNC_OPTION_ASSETS),
        ("weather_enrichment", ENRICHMENT_OPTION_ASSETS),
    ):
        for asset in assets:
            fields = option_fields(job, asset)
            assert set(fields) == {"batch_size", "max_retries", "skip_weather_enrichment"}
            assert fields["batch_size"].default_value == 5000
            assert fields["max_retries"].default_value is None
            assert fields["skip_weather_enrichment"].default_value is False
            assert all(f.description and not f.is_required for f in fields.values())
    # A default request's config names no option: runs behave as before.
    assert options_run_config(SyncOptions()) == {}


def test_sensors_take_the_options_from_the_environment(monkeypatch) -> None:
    def request(job: str) -> dict:
        return range_run_request(
            job, USER, "2024-01", "2024-02", run_key="k", sync_type="scheduled"
        ).run_config

    assert request("strava_sync") == {"loggers": {"console": {}}}
    monkeypatch.setenv("SYNC_ASSETS_BATCH_SIZE", "250")
    monkeypatch.setenv("SYNC_ASSETS_SKIP_WEATHER", "true")
    config = request("strava_sync")
    ops = config["ops"]
    assert set(ops) == set(SYNC_OPTION_ASSETS)
    # What the job runs with (Dagster's own validation of the request's run config).
    resolved = validate_run_config(defs.resolve_job_def("strava_sync"), config)["ops"]
    assert {a: resolved[a]["config"] for a in SYNC_OPTION_ASSETS} == dict.fromkeys(
        SYNC_OPTION_ASSETS,
        {"batch_size": 250, "max_retries": None, "skip_weather_enrichment": True},
    )
    assert {o["config"]["batch_size"] for o in ops.values()} == {250}
    assert {o["config"]["skip_weather_enrichment"] for o in ops.values()} == {True}
    # The weather job is the one that fills the weather in: it never skips it.
    config = request("weather_enrichment")
    assert set(config["ops"]) == set(ENRICHMENT_OPTION_ASSETS)
    assert all(o["config"] == {"batch_size": 250} for o in config["ops"].values())
    validate_run_config(defs.resolve_job_def("weather_enrichment"), config)
    monkeypatch.setenv("SYNC_ASSETS_BATCH_SIZE", "0")
    with pytest.raises(ValueError, match="batch_size 0: Input should be greater than 0"):
        request("strava_sync")
    with pytest.raises(ValueError, match="max_retries 0"):
        checked_options(max_retries=0)


def test_the_time_range_maps_onto_whole_months() -> None:
    jan15 = int(datetime(2024, 1, 15, 12, tzinfo=UTC).timestamp())
    mar1 = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp())
    # `before` is exclusive: a range ending at March's first second ends in February.
    assert months_of_range(jan15, mar1) == ("2024-01", "2024-02")
    assert months_of_range(jan15, mar1 + 1) == ("2024-01", "2024-03")
    assert months_of_range(None, mar1) == (None, "2024-02")
    assert months_of_range(jan15, None) == ("2024-01", None)
    with pytest.raises(ValueError, match="is not before"):
        months_of_range(mar1, mar1)


def _listen(url: str, got: list[dict], ready: threading.Event, stop: threading.Event) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("LISTEN sync_sessions")
        ready.set()
        while not stop.is_set():
            for note in conn.notifies(timeout=0.2, stop_after=1):
                got.append(json.loads(note.payload))


def test_skip_weather_stores_without_a_weather_request_and_enrich_fills_it_in(
    sandbox, server, pg_url, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    data_dir = tmp_path / "data"
    store = open_store(pg_url, data_dir)
    resources = make_resources(sandbox, server, tmp_path, pg_url, data_dir)
    user, athlete = connect_user(store, sandbox, pg_url, 40, years=0.5)
    first, last = whole_history(sandbox, athlete)
    got: list[dict] = []
    ready, stop = threading.Event(), threading.Event()
    listener = threading.Thread(target=_listen, args=(pg_url, got, ready, stop), daemon=True)
    listener.start()
    assert ready.wait(10)
    server.weather.clear_requests()
    skip = options_run_config(SyncOptions(skip_weather_enrichment=True))
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
        result = sync_range(instance, resources, user, first, last, run_config=skip)
        assert result.success
        time.sleep(0.5)  # the last notification on its way
        stop.set()
        listener.join(5)
        assert server.weather.request_count(None) == 0  # not one weather request
        statuses = [n["status"] for n in got if n["user_id"] == user]
        phases = list(dict.fromkeys(statuses))
        assert phases == ["initiated", "fetching_activities", "storing_data", "completed"], phases
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute(
                "select enrichment_status from public.runs where user_id = %s", (user,)
            ).fetchall()
        assert len(rows) == 40
        weather = {r[0]["weather_status"] for r in rows}
        assert weather <= {"skipped", "no_location"} and "skipped" in weather
        skipped = [r[0] for r in rows if r[0]["weather_status"] == "skipped"]
        assert all(not s["weather"] and s["weather_retryable"] for s in skipped)
        assert "skip_weather_enrichment" in skipped[0]["weather_reason"]
        assert run_metadata(result, "weather_enriched_activities")["weather_skipped"] == len(
            skipped
        )
        # The weather retry sensor's query lists their months, due now.
        pending = store.pending_enrichment(datetime.now(UTC))
        assert sum(n for u, _, n in pending if u == user) == len(skipped)
        # The weather-only job (what `sync-assets enrich` and the sensor start) fills them in,
        # even when asked to skip the weather: that is all it is for.
        job = Definitions(
            assets=[raw_strava_activities, weather_enriched_activities, runs_table],
            jobs=[weather_enrichment_job],
            resources=resources,
        ).resolve_job_def("weather_enrichment")
        enriched = job.execute_in_process(
            instance=instance,
            run_config={
                "ops": {
                    a: {"config": {"skip_weather_enrichment": True}}
                    for a in ENRICHMENT_OPTION_ASSETS
                }
            },
            tags={
                ASSET_PARTITION_RANGE_START_TAG: f"{first}|{user}",
                ASSET_PARTITION_RANGE_END_TAG: f"{last}|{user}",
            },
        )
        assert enriched.success
    assert server.weather.request_count("archive") > 0
    with psycopg.connect(pg_url) as conn:
        after = conn.execute(
            "select enrichment_status ->> 'weather_status', count(*) from public.runs"
            " where user_id = %s group by 1",
            (user,),
        ).fetchall()
    counts = dict(after)
    assert "skipped" not in counts and counts.get("enriched", 0) > 0, counts
    store.close()


def test_batch_size_sets_the_store_transactions_and_max_retries_the_client(
    sandbox, server, tmp_path
) -> None:
    data_dir = tmp_path / "data"
    store = open_store(None, data_dir)
    # No step re-attempt: the client's retries alone decide.
    resources = make_resources(sandbox, server, tmp_path, None, data_dir, step_retries=0)
    user, athlete = connect_user(store, sandbox, None, 30, years=0.25)
    first, last = whole_history(sandbox, athlete)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
        # Two 5xx in a row: one retry is not enough.
        sandbox.set_faults(error_5xx_next=2)
        one = options_run_config(SyncOptions(max_retries=1, batch_size=7))
        failed = sync_range(instance, resources, user, first, last, run_config=one)
        assert not failed.success
        assert store.run_ids(user) == []  # nothing stored
        sandbox.set_faults(error_5xx_next=2)
        three = options_run_config(SyncOptions(max_retries=3, batch_size=7))
        result = sync_range(instance, resources, user, first, last, run_config=three)
        assert result.success
        assert run_metadata(result, "raw_strava_activities")["retries"] == 2
        months = partition_metadata(result, "runs_table")
        saved = [m["saved"] for m in months.values()]
        assert sum(saved) == 30
        stored = run_metadata(result, "runs_table")
        assert stored["store_batches"] == sum(math.ceil(n / 7) for n in saved) > len(saved)
        # The default batch: one transaction per month with rows.
        again = sync_range(instance, resources, user, first, last)
        assert again.success
        assert run_metadata(again, "runs_table")["store_batches"] == sum(1 for n in saved if n)
    store.close()


def test_max_retries_sets_the_weather_clients_retries_too(sandbox, server, tmp_path) -> None:
    data_dir = tmp_path / "data"
    store = open_store(None, data_dir)
    resources = make_resources(sandbox, server, tmp_path, None, data_dir)
    user, athlete = connect_user(store, sandbox, None, 20, years=0.25)
    first, last = whole_history(sandbox, athlete)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
        figures = {}
        for retries in (1, 3):
            server.weather.set_faults(error_5xx_next=2)  # two 5xx in a row, then answers
            config = options_run_config(SyncOptions(max_retries=retries))
            result = sync_range(instance, resources, user, first, last, run_config=config)
            assert result.success  # a weather failure never fails the sync
            figures[retries] = run_metadata(result, "weather_enriched_activities")
    # One retry: the request fails, its activities are stored `failed`; three: it survives.
    assert figures[1]["weather_retries"] == 1 and figures[1]["weather_failed"] > 0
    assert figures[3]["weather_retries"] == 2 and figures[3]["weather_failed"] == 0
    assert figures[3]["weather_enriched"] > 0
    store.close()


def test_a_run_with_a_bad_option_fails_before_writing_anything(sandbox, server, tmp_path) -> None:
    data_dir = tmp_path / "data"
    store = open_store(None, data_dir)
    resources = make_resources(sandbox, server, tmp_path, None, data_dir)
    user, athlete = connect_user(store, sandbox, None, 5, years=0.1)
    first, last = whole_history(sandbox, athlete)
    bad = {"ops": {a: {"config": {"batch_size": 0}} for a in SYNC_OPTION_ASSETS}}
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
        result = sync_range(instance, resources, user, first, last, run_config=bad)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "raw_strava_activities"  # the first step, refused at its start
    assert "batch_size" in str(failure.step_failure_data.error.to_string())
    assert sandbox.request_count(None) == 0  # nor one Strava request (token or list)
    assert store.run_ids(user) == []
    with sqlite3.connect(data_dir / "sync_assets.db") as db:
        assert db.execute("select count(*) from sync_sessions").fetchone()[0] == 0
    store.close()


def test_the_projects_instance_makes_no_run_of_a_bad_option() -> None:
    """On this project's instance class (every dagster.yaml here names it), a run asked with a
    bad option is refused as it is created (`DagsterInstance.create_run`: what the
    launchpad's launch, the sensor and backfill daemons call): no run. (`execute_in_process`
    creates its run another way; the CLI checks the options itself.)"""
    bad = {"ops": {a: {"config": {"max_retries": 0}} for a in SYNC_OPTION_ASSETS}}
    good = {"ops": {a: {"config": {"max_retries": 2}} for a in SYNC_OPTION_ASSETS}}
    project = {"instance_class": INSTANCE_SETTINGS["instance_class"]}
    with instance_for_test(overrides=project) as instance:
        assert type(instance).__name__ == "JsonLogsInstance"
        with pytest.raises(ValueError, match=r"^bad sync option of raw_strava_activities: "):
            create_run_for_test(instance, job_name="strava_sync", run_config=bad)
        assert instance.get_runs_count() == 0
        run = create_run_for_test(instance, job_name="strava_sync", run_config=good)
        assert run.run_config["ops"] == good["ops"] and instance.get_runs_count() == 1


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=300)


def test_cli_flags_refuse_bad_values_and_pass_the_options(sandbox, server, tmp_path) -> None:
    athlete = sandbox.add_athlete(n_activities=12, years=0.2)
    home = tmp_path / "home"
    env = sandbox_env(sandbox, server, home)
    cli_connect(env, USER, athlete.refresh_token)
    env["DAGSTER_HOME"] = str(home / "dagster")
    first = sandbox.activities(athlete.athlete_id)[0]["start_date"][:7]
    for flags, says in (
        (["--batch-size", "0"], "error: bad sync option: batch_size 0: Input should be greater"),
        (["--max-retries", "0"], "error: bad sync option: max_retries 0: Input should be greater"),
        (["--batch-size", "-5"], "error: bad sync option: batch_size -5"),
        (
            ["--after", "1700000000", "--before", "1600000000"],
            "error: --after 1700000000 is not before --before 1600000000",
        ),
    ):
        months = [] if "--after" in flags else ["--from", first]
        out = _cli(env, "sync", "--user", USER, *months, *flags)
        assert out.returncode == 2, out.stdout + out.stderr
        assert out.stderr.count("\n") == 1 and out.stderr.startswith(says), out.stderr
        assert out.stdout == ""
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert instance.get_runs_count() == 0
    with sqlite3.connect(Path(env["SYNC_ASSETS_HOME"]) / "sync_assets.db") as db:
        assert db.execute("select count(*) from sync_sessions").fetchone()[0] == 0

    server.weather.clear_requests()
    out = _cli(
        env, "sync", "--user", USER, "--from", first, "--skip-weather", "--batch-size", "5",
        "--max-retries", "2", "--quiet",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert server.weather.request_count(None) == 0
    assert " skipped (asked), " in out.stdout  # the summary says why there is no weather
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        (run,) = instance.get_runs()
    options = {"batch_size": 5, "max_retries": 2, "skip_weather_enrichment": True}
    assert {a: run.run_config["ops"][a]["config"] for a in SYNC_OPTION_ASSETS} == dict.fromkeys(
        SYNC_OPTION_ASSETS, options
    )
    with sqlite3.connect(home / "sync_assets.db") as db:
        statuses = {
            json.loads(r[0])["weather_status"]
            for r in db.execute("select enrichment_status from runs")
        }
    assert statuses <= {"skipped", "no_location"} and "skipped" in statuses
    # `enrich` fills them in.
    out = _cli(env, "enrich", "--user", USER, "--from", first, "--quiet")
    assert out.returncode == 0, out.stdout + out.stderr
    with sqlite3.connect(home / "sync_assets.db") as db:
        statuses = {
            json.loads(r[0])["weather_status"]
            for r in db.execute("select enrichment_status from runs")
        }
    assert "skipped" not in statuses and "enriched" in statuses, statuses


def test_cli_help_names_the_flags() -> None:
    out = subprocess.run([CLI, "sync", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for flag in ("--batch-size", "--max-retries", "--skip-weather"):
        assert flag in out.stdout
