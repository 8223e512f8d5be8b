"""Runs of the three assets in process, and the metadata their materializations carry."""

from __future__ import annotations

RUN_PREFIX = "run_"


def sync_range(
    instance: object,
    resources: dict[str, object],
    user: str,
    first: str,
    last: str,
    *,
    enrich_only: bool = False,
    run_config: dict[str, object] | None = None,
    **tags: str,
):  # noqa: ANN201 - dagster's ExecuteInProcessResult
    """One single-run backfill of a user's months through the three assets (or the weather
    and store steps only), as the UI, a sensor or `sync-assets sync` would ask for it;
    `run_config`: e.g. the assets' `SyncOptions` (`sync_request.options_run_config`)."""
    from dagster import materialize
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from sync_assets.assets import raw_strava_activities, runs_table, weather_enriched_activities

    return materialize(
        [raw_strava_activities, weather_enriched_activities, runs_table],
        instance=instance,
        resources=resources,
        selection=[weather_enriched_activities, runs_table] if enrich_only else None,
        run_config=run_config,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: f"{first}|{user}",
            ASSET_PARTITION_RANGE_END_TAG: f"{last}|{user}",
            **tags,
        },
        raise_on_error=False,
    )


def run_metadata(result: object, asset: str) -> dict[str, object]:
    """The run's figures of `asset`: the `run_` keys every partition's materialization carries
    (a single-run backfill's requests, totals, timings), without the prefix, values unwrapped;
    {} if the run materialized none. A partition's own counts: `partition_metadata`."""
    for m in result.get_asset_materialization_events():
        if m.asset_key.path == [asset]:
            return {
                k.removeprefix(RUN_PREFIX): v.value
                for k, v in m.materialization.metadata.items()
                if k.startswith(RUN_PREFIX)
            }
    return {}


def partition_metadata(result: object, asset: str) -> dict[str, dict[str, object]]:
    """Each materialized partition of `asset` -> its materialization's metadata (its own
    counts, and the run's figures under `run_` keys), values unwrapped."""
    return {
        str(m.partition): {k: v.value for k, v in m.materialization.metadata.items()}
        for m in result.get_asset_materialization_events()
        if m.asset_key.path == [asset]
    }


def stored_partition_metadata(instance: object, asset: str) -> dict[str, dict[str, object]]:
    """`partition_metadata`, read back from the instance's event log (what the UI shows): each
    partition's latest materialization of `asset` -> its metadata, values unwrapped."""
    from dagster import AssetKey

    records = instance.fetch_materializations(AssetKey(asset), limit=10_000).records
    stored: dict[str, dict[str, object]] = {}
    for record in records:  # newest first: keep each partition's latest
        m = record.asset_materialization
        stored.setdefault(str(m.partition), {k: v.value for k, v in m.metadata.items()})
    return stored


def loading_lines(instance: object, run_id: str) -> list[str]:
    """The run's log lines of the Parquet IO manager loading inputs, as the instance keeps them."""
    return [
        e.user_message
        for e in instance.all_logs(run_id)
        if not e.is_dagster_event and e.user_message.startswith("Loading ")
    ]
