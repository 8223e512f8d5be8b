"""Incremental syncs: every user's current month, spread over the day inside Strava's budget.

Strava's read limit is per application (1,000 requests a day by default): the schedule runs
hourly and gives each user one hour slot per period (`SYNC_ASSETS_INCREMENTAL_HOURS`, default
24) by a hash of the user id, so the day's load is even; a tick launches at most its share of
the daily budget (`STRAVA_READ_DAILY_LIMIT` x `SYNC_ASSETS_INCREMENTAL_SHARE` / 24, default
1,000 x 0.8 / 24 = 33 runs) and leaves the rest for new users' backfills. An incremental run
costs one list request (plus a token refresh when due), whatever its months hold: it lists only
what started since the user's watermark, less a lookback (`sync_assets.core.incremental`).
With webhooks on (`STRAVA_WEBHOOKS=on`), users without a push event since their last completed
sync are skipped.
"""

import hashlib
from datetime import UTC, datetime, timedelta

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from sync_assets.core import settings
from sync_assets.job_names import STRAVA_SYNC_JOB
from sync_assets.partitions import USERS_PARTITIONS_NAME, month_key
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.sensors.new_users import EPOCH
from sync_assets.sensors.requests import range_run_request

ALL_USERS = 1_000_000


def slot_of(user_id: str, slots: int) -> int:
    """A stable hour slot per user (not Python's `hash`: it changes between processes)."""
    return int(hashlib.sha256(user_id.encode()).hexdigest()[:8], 16) % slots


def incremental_run_requests(
    users: list[str], when: datetime, *, period_hours: int, max_runs: int
) -> tuple[list[RunRequest], int]:
    """This hour's run requests, and how many due users the budget left for the next period."""
    when = when.astimezone(UTC)
    slots = max(1, period_hours)
    slot = int(when.timestamp() // 3600) % slots
    due = [u for u in users if slot_of(u, slots) == slot]
    # Over budget: take a different share each day, so nobody waits forever.
    day = when.strftime("%Y-%m-%d")
    due.sort(key=lambda u: hashlib.sha256(f"{day}:{u}".encode()).hexdigest())
    chosen, left = due[:max_runs], len(due) - min(len(due), max_runs)
    # Early in a month, last month's late uploads are synced too.
    first = month_key(when - timedelta(days=2))
    last = month_key(when)
    hour = when.strftime("%Y-%m-%dT%H")
    requests = [
        range_run_request(
            STRAVA_SYNC_JOB,
            user,
            first,
            last,
            run_key=f"incremental:{user}:{hour}",
            sync_type="incremental",
        )
        for user in sorted(chosen)
    ]
    return requests, left


@schedule(
    cron_schedule=settings.incremental_cron(),
    job_name=STRAVA_SYNC_JOB,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Sync each active user's current month once per period, spread over the day.",
)
def incremental_sync(
    context: ScheduleEvaluationContext, supabase: SupabaseResource
) -> list[RunRequest] | SkipReason:
    when = context.scheduled_execution_time or datetime.now(UTC)
    known = set(context.instance.get_dynamic_partitions(USERS_PARTITIONS_NAME))
    store = supabase.store()
    users = [u for u, _ in store.active_users(EPOCH, "", ALL_USERS) if u in known]
    if settings.webhooks_enabled():
        # Strava pushes every change: only users with an event since their last sync can
        # have anything new (the webhook sensor normally got them already: a safety net).
        news = store.users_with_news()
        users = [u for u in users if u in news]
    max_runs = max(1, int(settings.strava_read_daily_limit() * settings.incremental_share() / 24))
    requests, left = incremental_run_requests(
        users, when, period_hours=settings.incremental_hours(), max_runs=max_runs
    )
    if left:
        context.log.warning(
            f"{left} users due this hour exceed the hour's share of Strava's daily read budget "
            f"({max_runs} runs): they are synced in a later period"
        )
    return requests or SkipReason(f"no user's slot is this hour ({len(users)} active users)")
