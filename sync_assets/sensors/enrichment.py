"""Weather that could not be had at sync time (pending archive days, an outage) is filled in
later by runs of `weather_enrichment`: they read the stored activities back from Parquet and
never ask Strava again; cached hours cost nothing, so only the missing ones are fetched.
"""

from datetime import UTC, datetime

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from sync_assets.job_names import WEATHER_ENRICHMENT_JOB
from sync_assets.partitions import (
    FIRST_MONTH,
    USERS_PARTITIONS_NAME,
    month_key,
    partition_key,
    sync_spans,
)
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.sensors.requests import range_run_request


def enrichment_run_requests(
    pending: list[tuple[str, datetime, int]], known_users: set[str], now: datetime
) -> list[RunRequest]:
    """One run per user and block of consecutive months with activities to re-enrich."""
    keys = [
        str(partition_key(user, month_key(month)))
        for user, month, _ in pending
        if user in known_users and month_key(month) >= FIRST_MONTH
    ]
    hour = now.astimezone(UTC).strftime("%Y-%m-%dT%H")
    requests = []
    for span in sync_spans(keys):
        first, last = span.months[0], span.months[-1]
        requests.append(
            range_run_request(
                WEATHER_ENRICHMENT_JOB,
                span.user_id,
                first,
                last,
                # One request per block and hour: a repeated tick adds nothing.
                run_key=f"weather-retry:{span.user_id}:{first}:{last}:{hour}",
                sync_type="enrichment",
            )
        )
    return requests


@sensor(
    job_name=WEATHER_ENRICHMENT_JOB,
    minimum_interval_seconds=3600,
    default_status=DefaultSensorStatus.STOPPED,
    description="Re-enrich activities whose weather is pending, failed or skipped, once due.",
)
def weather_retry_sensor(
    context: SensorEvaluationContext, supabase: SupabaseResource
) -> SkipReason | list[RunRequest]:
    now = datetime.now(UTC)
    pending = supabase.store().pending_enrichment(now)
    if not pending:
        return SkipReason("no activity waits for its weather")
    users = set(context.instance.get_dynamic_partitions(USERS_PARTITIONS_NAME))
    requests = enrichment_run_requests(pending, users, now)
    if not requests:
        return SkipReason("activities wait for weather, but their users are not partitions")
    return requests
