"""New athletes sync their whole history without anyone launching anything.

`new_strava_users` reads connections made since its cursor (a keyset point: connection time and
user id), adds each user to the `strava_users` dynamic partitions and requests one run of
`strava_sync` over the whole range of months: a single-run backfill that fetches the history
with one paginated query. Crash-safe and idempotent: the cursor advances only with the tick's
result, adding an existing partition is a no-op, and each run request carries the run key
`initial-sync:<user>`, which Dagster launches at most once.
"""

import json
from datetime import UTC, datetime

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from sync_assets.job_names import STRAVA_SYNC_JOB
from sync_assets.partitions import (
    FIRST_MONTH,
    month_key,
    user_partitions,
    validate_user_id,
)
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.sensors.requests import range_run_request

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
USERS_PER_TICK = 500  # a burst of sign-ups is spread over ticks, oldest first


def history_run_request(user_id: str, now: datetime) -> RunRequest:
    """One run over every month of the user's history (2009 to the current month)."""
    return range_run_request(
        STRAVA_SYNC_JOB,
        user_id,
        FIRST_MONTH,
        month_key(now),
        run_key=f"initial-sync:{user_id}",
        sync_type="backfill",
    )


def _cursor(raw: str | None) -> tuple[datetime, str]:
    if not raw:
        return EPOCH, ""
    data = json.loads(raw)
    return datetime.fromisoformat(data["since"]), data["user"]


@sensor(
    job_name=STRAVA_SYNC_JOB,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description="Add newly connected users as partitions and sync their whole history.",
)
def new_strava_users(
    context: SensorEvaluationContext, supabase: SupabaseResource
) -> SensorResult | SkipReason:
    since, after_user = _cursor(context.cursor)
    found = supabase.store().active_users(since, after_user, limit=USERS_PER_TICK)
    if not found:
        return SkipReason("no new Strava connection")
    users, refused = [], []
    for user_id, _ in found:
        try:
            users.append(validate_user_id(user_id))
        except ValueError:
            refused.append(user_id)  # cannot be a partition key: say so, skip it
    if refused:
        context.log.warning(f"user ids that cannot be partition keys, skipped: {refused[:10]}")
    last_user, last_at = found[-1]
    now = datetime.now(UTC)
    return SensorResult(
        run_requests=[history_run_request(u, now) for u in users],
        dynamic_partitions_requests=[user_partitions.build_add_request(users)] if users else [],
        cursor=json.dumps({"since": last_at.isoformat(), "user": last_user}),
    )
