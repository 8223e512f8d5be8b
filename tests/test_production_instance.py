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
                {"key": "sync_assets/sync_type", "value": "backfill", "limit": 6},
                {
                    "key": "sync_assets/user",
                    "value": {"applyLimitPerUniqueValue": True},
                    "limit": 1,
                },
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


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "one_by_one"])
@pytest.mark.parametrize("kind", ["production", "embedded"])
def test_a_range_runs_asset_events_are_written_as_dagster_writes_them(
    tmp_path, monkeypatch: pytest.MonkeyPatch, kind: str, batched: bool
) -> None:
    """With `DAGSTER_EVENT_BATCH_SIZE` (as `sync-assets sync` runs), a range run's planned
    events (and on SQLite its materializations) are written in one INSERT per table
    (`write_asset_event_batches_at_once`); without it, one by one as Dagster writes them.
    Either way the same rows: each (asset, month) planned and materialized, the asset index
    pointing at the run, and a failed run's months marked failed in the UI."""
    from dagster import (
        AssetPartitionStatus,
        DagsterEventType,
        EventRecordsFilter,
        MonthlyPartitionsDefinition,
        asset,
    )
    from sqlalchemy import event as sa_event
    from sqlalchemy.engine import Engine

    months = MonthlyPartitionsDefinition(start_date="2020-01-01", end_date="2021-01-01")

    @asset(partitions_def=months)
    def upstream() -> None:
        return None

    @asset(partitions_def=months, deps=[upstream])
    def downstream() -> None:
        raise RuntimeError("this step fails, so its months are marked failed")

    home = tmp_path / "dagster_home"
    home.mkdir()
    config = {
        "production": REPO / "deploy" / "production" / "dagster.yaml",
        "embedded": REPO / "sync_assets" / "embedded_dagster.yaml",
    }[kind]
    shutil.copy(config, home / "dagster.yaml")
    if batched:
        monkeypatch.setenv(EVENT_BATCH_SIZE_VAR, EVENT_BATCH_SIZE)
    else:
        monkeypatch.delenv(EVENT_BATCH_SIZE_VAR, raising=False)
    planned_type = DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value
    materialized_type = DagsterEventType.ASSET_MATERIALIZATION.value
    inserts: list[tuple[int, int]] = []  # (planned, materializations) rows of each INSERT

    def count_inserts(conn, cursor, statement, params, context, many) -> None:  # noqa: ANN001, PLR0913 - SQLAlchemy's hook
        if not statement.lstrip().upper().startswith("INSERT INTO EVENT_LOGS"):
            return
        rows = params if many else [params]
        values = [v for row in rows for v in (row.values() if isinstance(row, dict) else row or ())]
        inserts.append((values.count(planned_type), values.count(materialized_type)))

    with temporary_database() as url:
        monkeypatch.setenv("DAGSTER_PG_URL", url)
        instance = DagsterInstance.from_config(str(home))
        sa_event.listen(Engine, "before_cursor_execute", count_inserts)
        try:
            result = materialize(
                [upstream, downstream],
                instance=instance,
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: "2020-01-01",
                    ASSET_PARTITION_RANGE_END_TAG: "2020-06-01",
                },
                raise_on_error=False,
            )
            assert not result.success
            keys = [f"2020-{m:02d}-01" for m in range(1, 7)]
            planned = instance.get_event_records(
                EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION_PLANNED), limit=100
            )
            assert sorted((r.asset_key.to_user_string(), r.partition_key) for r in planned) == [
                (name, key) for name in ("downstream", "upstream") for key in keys
            ]
            assert {r.run_id for r in planned} == {result.run_id}
            materialized = instance.fetch_materializations(AssetKey("upstream"), limit=100)
            assert sorted(r.partition_key for r in materialized.records) == keys
            records = instance.get_asset_records([AssetKey("upstream"), AssetKey("downstream")])
            assert {r.asset_entry.last_run_id for r in records} == {result.run_id}
            # The index's last materialization is the run's last one, as one by one.
            (up,) = (r.asset_entry for r in records if r.asset_entry.asset_key.path == ["upstream"])
            assert up.last_materialization_record.storage_id == max(
                r.storage_id for r in materialized.records
            )
            assert up.last_materialization_record.partition_key == keys[-1]
            assert instance.get_status_by_partition(AssetKey("downstream"), keys, months) == {
                key: AssetPartitionStatus.FAILED for key in keys
            }
            assert instance.get_status_by_partition(AssetKey("upstream"), keys, months) == {
                key: AssetPartitionStatus.MATERIALIZED for key in keys
            }
        finally:
            sa_event.remove(Engine, "before_cursor_execute", count_inserts)
            instance.dispose()
    # SQLite writes each asset event twice (the run's shard and the index); PostgreSQL once.
    copies = 2 if kind == "embedded" else 1
    planned_rows = [p for p, _ in inserts if p]
    materialized_rows = [m for _, m in inserts if m]
    if batched:
        assert planned_rows == [12] * copies
        assert materialized_rows == [6] * copies  # dagster-postgres's own batch on PostgreSQL
    else:
        assert planned_rows == [1] * 12 * copies
        assert materialized_rows == [1] * 6 * copies


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
