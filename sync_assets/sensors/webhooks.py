"""Strava's push events, stored by the receiver (`sync_assets.apps.webhooks`), become work here.

* activity `create` / `update`: one `strava_sync` run over that activity's month (taken from
  `runs` when the activity is known, else from one `GET /activities/{id}`: an upload can be
  back-dated by years; if Strava cannot answer, the event's month and the one before);
  several events of a user are merged into one run. When every event of the run has a known
  start, the run names the earliest (`LIST_FROM_TAG`): it then lists from there or from the
  user's watermark, whichever is earlier (`sync_assets.core.incremental`), not whole months.
* activity `delete`: the row leaves `runs` at once, no Strava request.
* athlete `update` with `authorized: "false"`: the connection is marked deauthorized and every
  row and file of that user's Strava data is deleted, as Strava's API agreement requires.

The cursor is the last event id handled. A tick that crashes is evaluated again: deletions are
idempotent and run keys (`webhook:<user>:<months>:<last event id>`) launch once.
"""

from datetime import UTC, datetime, timedelta

from dagster import (
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from sync_assets.core import settings
from sync_assets.core.errors import SyncError
from sync_assets.core.incremental import LIST_FROM_TAG
from sync_assets.core.webhook_events import is_deauthorization
from sync_assets.job_names import STRAVA_SYNC_JOB
from sync_assets.partitions import (
    USERS_PARTITIONS_NAME,
    month_key,
    partition_key,
    sync_spans,
    user_partitions,
)
from sync_assets.resources.parquet_io import delete_user_files
from sync_assets.resources.strava import StravaResource
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.sensors.requests import range_run_request

EVENTS_PER_TICK = 500
DEAUTHORIZED = "the athlete deauthorized the app (Strava webhook)"


def activity_start(
    strava: StravaResource, user: str, activity_id: int, context: SensorEvaluationContext
) -> datetime | None | bool:
    """When an activity we never stored starts (one read request), False if Strava no longer
    has it, None if Strava cannot tell now (the caller falls back to the event's month)."""
    try:
        with strava.client(user, logger=context.log) as client:
            activity = client.activity(activity_id)
    except SyncError as err:
        context.log.warning(
            f"activity {activity_id} of user {user}: {err.type.value}; syncing the event's month"
        )
        return None
    if activity is None:
        return False
    try:
        return datetime.fromisoformat(str(activity["start_date"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None


@sensor(
    job_name=STRAVA_SYNC_JOB,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description="Turn Strava push events into syncs, deletions and deauthorizations.",
)
def strava_webhook_events(
    context: SensorEvaluationContext, supabase: SupabaseResource, strava: StravaResource
) -> SensorResult | SkipReason:
    store = supabase.store()
    events = store.webhook_events_after(int(context.cursor or 0), EVENTS_PER_TICK)
    if not events:
        return SkipReason("no new Strava event")
    known = set(context.instance.get_dynamic_partitions(USERS_PARTITIONS_NAME))
    keys: dict[str, int] = {}  # partition key -> last event id asking for it
    starts: dict[str, list[datetime | None]] = {}  # partition key -> its events' starts
    gone: list[str] = []
    deleted = 0
    for e in events:
        user = e["user_id"]
        if user is None:
            continue  # an athlete this app does not know (any more)
        if is_deauthorization(e):
            store.delete_user_data(user, DEAUTHORIZED)
            delete_user_files(settings.storage_url(), user)
            keys = {k: i for k, i in keys.items() if not k.endswith(f"|{user}")}
            if user in known:
                gone.append(user)
            continue
        if e["object_type"] != "activity":
            continue
        if e["aspect_type"] == "delete":
            deleted += store.delete_run(user, e["object_id"])
            continue
        if user not in known:
            continue  # not synced yet: its first sync will bring this activity too
        start = store.run_start(user, e["object_id"])
        if start is None:
            start = activity_start(strava, user, e["object_id"], context)
            if start is False:
                continue  # deleted since: its delete event follows
        when = start or datetime.fromtimestamp(e["event_time"], UTC)
        months = {month_key(when)}
        if start is None:
            months.add(month_key(when - timedelta(days=2)))  # a late upload of last month
        for month in months:
            keys[str(partition_key(user, month))] = e["id"]
            starts.setdefault(str(partition_key(user, month)), []).append(start)
    requests = []
    for span in sync_spans(keys):
        last_event = max(keys[k] for k in span.partition_keys())
        first, last = span.months[0], span.months[-1]
        known = [s for k in span.partition_keys() for s in starts.get(k, [])]
        # One start unknown: nothing says how far back the run must list, so whole months.
        earliest = min(known) if known and None not in known else None
        requests.append(
            range_run_request(
                STRAVA_SYNC_JOB,
                span.user_id,
                first,
                last,
                run_key=f"webhook:{span.user_id}:{first}:{last}:{last_event}",
                sync_type="webhook",
                tags={LIST_FROM_TAG: earliest.isoformat()} if earliest is not None else None,
            )
        )
    if deleted or gone:
        context.log.info(f"{deleted} activities deleted; {len(gone)} users deauthorized")
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[user_partitions.build_delete_request(gone)] if gone else [],
        cursor=str(events[-1]["id"]),
    )
