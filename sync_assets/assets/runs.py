"""`runs_table`: the app's `public.runs`, upserted from the fetched activities."""

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    Backoff,
    Failure,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)

from sync_assets.core import metrics, settings
from sync_assets.core.steps.store import STEP, StoreFailed, StoreOutcome, store_partitions
from sync_assets.core.steps.store import listing_shortfall as listing_shortfall  # re-exported
from sync_assets.core.storage import StepMetrics, StoreResult
from sync_assets.dagster_private import add_partition_metadata
from sync_assets.partitions import run_partition_keys, split_key, strava_partitions
from sync_assets.resources.parquet_io import by_partition
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.sync_request import SyncOptions
from sync_assets.user_runs import step_hold


def database_kind() -> str:
    """The Dagster kind of the database `runs_table` writes (`settings.database_url()`)."""
    return "postgres" if settings.database_url() else "sqlite"


def partition_metadata(result: StoreResult, quarantined: int) -> dict[str, object]:
    """One partition's own store figures (a user's month)."""
    return {
        "saved": result.saved,
        "updated": result.updated,
        "skipped_unchanged": result.skipped,
        "failed": result.failed,
        "quarantined_invalid": quarantined,
    }


def _metadata(outcome: StoreOutcome, steps: list[StepMetrics]) -> dict[str, object]:
    """The run's figures, on every partition's materialization as `run_` keys."""
    total = outcome.total
    rows = total.saved + total.updated + total.skipped
    return {
        "run_saved": total.saved,
        "run_updated": total.updated,
        "run_skipped_unchanged": total.skipped,
        "run_failed": total.failed,
        "run_store_batches": total.batches,
        "run_quarantined_invalid": outcome.quarantined,
        "run_store_seconds": round(total.seconds, 3),
        "run_rows_per_second": round(rows / total.seconds) if total.seconds else 0,
        "run_errors": MetadataValue.text("\n".join(total.errors[:20]) or "none"),
        "run_phase_timings": MetadataValue.md(metrics.phase_table(steps)),
    }


@asset(
    partitions_def=strava_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="strava",
    # The backend it writes, as configured when the code location loads: Supabase/PostgreSQL
    # with DATABASE_URL, else the embedded SQLite.
    kinds={database_kind()},
    retry_policy=RetryPolicy(
        max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
    ),
)
def runs_table(
    context: AssetExecutionContext,
    config: SyncOptions,
    supabase: SupabaseResource,
    weather_enriched_activities,  # noqa: ANN001 - PartitionData, or a dict of them
) -> MaterializeResult:
    """Upserts the partitions' enriched activities into `runs` on (user_id, strava_id):
    re-running a partition changes nothing; invalid activities go to `activity_quarantine`.
    `config.batch_size` rows go in each transaction (`run_store_batches` counts them)."""
    keys = list(run_partition_keys(context))
    data = by_partition(keys, weather_enriched_activities)
    store = supabase.store()
    outcome = StoreOutcome()
    with (
        step_hold(context, store, {split_key(k)[0] for k in keys}) as hold,
        metrics.step(store, context.run, STEP, context.log, collect=outcome.step_fields, pool=True),
    ):
        try:
            store_partitions(
                keys, data, store, context.run, outcome=outcome, batch_size=config.batch_size
            )
        except StoreFailed as err:
            raise Failure(description=str(err), allow_retries=err.retry_step) from None
    hold.release()  # the run's last step: its users are free for the next run
    add_partition_metadata(
        context,
        {
            key: partition_metadata(result, quarantined)
            for key, (result, quarantined) in outcome.partitions.items()
        },
    )
    return MaterializeResult(metadata=_metadata(outcome, metrics.sync_steps(store, context.run)))
