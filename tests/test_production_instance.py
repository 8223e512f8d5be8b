"""deploy/production/dagster.yaml on the machine's PostgreSQL: the instance a team deploys."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from sync_assets.assets import raw_strava_activities
from sync_assets.local_runs import EVENT_BATCH_SIZE, EVENT_BATCH_SIZE_VAR
from sync_assets.partitions import USERS_PARTITIONS_NAME
from sync_assets.resources import ParquetIOManager, StravaResource, SupabaseResource

from .pg import temporary_database

REPO = Path(__file__).resolve().parents[1]


def test_production_instance_stores_runs_in_postgres(
    sandbox,
    server,
    connect_athlete,
    token_store,
    data_dir,
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import psycopg

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "production" / "dagster.yaml", home / "dagster.yaml")
    user, athlete = connect_athlete(250)
    # As `sync-assets sync` runs it: a range run's asset events written in batches.
    monkeypatch.setenv(EVENT_BATCH_SIZE_VAR, EVENT_BATCH_SIZE)
    with temporary_database() as url:
        monkeypatch.setenv("DAGSTER_PG_URL", url)
        instance = DagsterInstance.from_config(str(home))
        try:
            concurrency = instance.get_concurrency_config()
            assert concurrency.run_queue_config.max_concurrent_runs == 8
            assert concurrency.run_queue_config.tag_concurrency_limits == [
                {"key": "sync_assets/sync_type", "value": "backfill", "limit": 6}
            ]
            assert instance.global_op_concurrency_default_limit == 4  # strava_api, weather_api
            instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
            result = materialize(
                [raw_strava_activities],
                instance=instance,
                resources={
                    "strava": StravaResource(
                        client_id=sandbox.client_id,
                        client_secret=sandbox.client_secret,
                        api_url=server.api_url,
                        oauth_url=server.oauth_url,
                        supabase=SupabaseResource(data_dir=str(data_dir)),
                    ),
                    "parquet_io_manager": ParquetIOManager(base_path=str(tmp_path / "pq")),
                    "supabase": SupabaseResource(data_dir=str(data_dir)),
                },
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: f"2009-01-01|{user}",
                    ASSET_PARTITION_RANGE_END_TAG: f"2009-06-01|{user}",
                },
            )
            assert result.success
            # Every month's materialization is stored (in one batch), with its own counts.
            stored = {
                m.partition: m.metadata["activities"].value
                for m in (
                    r.asset_materialization
                    for r in instance.fetch_materializations(
                        AssetKey("raw_strava_activities"), limit=100
                    ).records
                )
            }
            in_run = {
                m.partition: m.materialization.metadata["activities"].value
                for m in result.get_asset_materialization_events()
            }
            assert stored == in_run and len(stored) == 6
            # The event log keeps one connection (`event_log_pool`), its commits durable; the
            # run storage opens its own per use, so none of its stay.
            assert _dagster_connections(url) == 1
            assert _synchronous_commit(instance) == "on"
        finally:
            instance.dispose()
        assert _dagster_connections(url) == 0  # closed with the instance
        with psycopg.connect(url) as conn:
            runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
            mats = conn.execute(
                "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
            ).fetchone()[0]
            parts = conn.execute(
                "SELECT count(*) FROM dynamic_partitions WHERE partitions_def_name = %s",
                (USERS_PARTITIONS_NAME,),
            ).fetchone()[0]
        assert (runs, mats, parts) == (1, 6, 1)


def test_the_event_log_can_commit_without_waiting_for_the_wal(tmp_path, monkeypatch) -> None:
    """`event_log_pool: {synchronous_commit: false}`: the event log's own connections (only
    them) commit asynchronously."""
    import yaml

    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((REPO / "deploy" / "production" / "dagster.yaml").read_text())
    config["event_log_pool"]["synchronous_commit"] = False
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with temporary_database() as url:
        monkeypatch.setenv("DAGSTER_PG_URL", url)
        instance = DagsterInstance.from_config(str(home))
        try:
            assert _synchronous_commit(instance) == "off"
            # The run storage keeps PostgreSQL's default.
            with instance.run_storage.connect() as conn:
                assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
        finally:
            instance.dispose()


def _synchronous_commit(instance: DagsterInstance) -> str:
    """`synchronous_commit` on a connection of the instance's event log."""
    with instance.event_log_storage._engine.connect() as conn:
        return conn.exec_driver_sql("SHOW synchronous_commit").scalar()


def _dagster_connections(url: str) -> int:
    """Client connections to Dagster's database other than this query's own."""
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchone()[0]
