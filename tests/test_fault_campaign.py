"""The fault campaign: several athletes synced through Dagster while everything misbehaves.

Strava answers slowly, drops connections, cuts bodies, sends 5xx bursts, a broken page and
corrupt activities, runs out of its shared 15-minute budget (another worker of the app used
it: 429), revokes one athlete mid-sync and changes two histories while they are listed; the
weather API is down for the first round. Push events reach the webhook receiver as they would
in production; the sensors turn them and the pending weather into runs, which are executed as
the daemon would. At the end the database must equal the sandbox's ground truth exactly.

Seeded (`SYNC_ASSETS_CAMPAIGN_SEED`, printed): a failing seed replays the same campaign.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet
from dagster import (
    DagsterEventType,
    DagsterInstance,
    build_sensor_context,
    materialize,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._core.test_utils import instance_for_test

from sync_assets.assets import raw_strava_activities, runs_table, weather_enriched_activities
from sync_assets.partitions import USERS_PARTITIONS_NAME, month_key
from sync_assets.resources import SupabaseResource
from sync_assets.sandbox import SandboxServer, StravaSandbox
from sync_assets.sandbox.strava import RateLimits
from sync_assets.sandbox.weather import WeatherLimits
from sync_assets.sensors.enrichment import weather_retry_sensor
from sync_assets.sensors.webhooks import strava_webhook_events
from sync_assets.storage import close_stores, open_store
from sync_assets.webhooks import WebhookReceiver, WebhookServer

from .conftest import LIST_ORDERS, connect_user, make_resources, run_metadata

SEED = int(os.environ.get("SYNC_ASSETS_CAMPAIGN_SEED", "20261129"))
SIZES = (0, 40, 450, 1_300, 3_000)  # athletes' histories; the 450 one revokes the app
REVOKED = 2
QUARTER = 900
LISTS = "/api/v3/athlete/activities"
CLIENT_RETRIES = 4
BURST_AFTER_PAGE = 6
BREAKER_RESET = 3.0  # seconds the weather breaker stays open (60 by default)
WEATHER_TIER = WeatherLimits(minutely=6_000, hourly=50_000, daily=100_000)
ASSETS = [raw_strava_activities, weather_enriched_activities, runs_table]
KEY_FIELDS = (
    "strava_id",
    "name",
    "sport_type",
    "start_date_utc",
    "distance_meters",
    "moving_time_seconds",
    "elapsed_time_seconds",
    "private",
)
VERIFY_TOKEN = "campaign-verify-token"

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def campaign_sandbox(list_order: str) -> Iterator[tuple[StravaSandbox, SandboxServer]]:
    sandbox = StravaSandbox(seed=SEED, list_order=list_order)
    with SandboxServer(sandbox) as srv:
        yield sandbox, srv


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


def truth_row(activity: dict) -> tuple:
    """What `runs` must hold for a Strava activity (a missing value is stored as 0 / "")."""
    return (
        activity["id"],
        activity.get("name") or "",
        activity.get("sport_type") or activity.get("type") or "Unknown",
        datetime.fromisoformat(activity["start_date"].replace("Z", "+00:00")),
        float(activity.get("distance") or 0.0),
        int(activity.get("moving_time") or 0),
        int(activity.get("elapsed_time") or 0),
        bool(activity.get("private")),
    )


def stored_rows(url: str, user: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"select {', '.join(KEY_FIELDS)} from public.runs where user_id = %s "
            "order by strava_id",
            (user,),
        ).fetchall()


def burst_after_page(sandbox: StravaSandbox, athlete_id: int, page: int) -> None:
    """Arm a burst of 5xx answers (one more than the client retries) once the athlete's
    listing has served `page` pages."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        served = sum(
            1
            for r in list(sandbox.requests)
            if r["athlete_id"] == athlete_id and r["path"] == LISTS and r["status"] == 200
        )
        if served >= page:
            sandbox.set_faults(error_5xx_next=CLIENT_RETRIES + 1)
            return
        time.sleep(0.005)


def exhaust_read_window(sandbox: StravaSandbox, api_url: str) -> int:
    """Another worker of the same app (not sharing our budget) spends the 15-minute reads."""
    other = sandbox.add_athlete(n_activities=1)
    spent = 0
    with httpx.Client(headers={"Authorization": f"Bearer {other.access_token}"}) as http:
        while http.get(f"{api_url}/athlete").status_code != 429:
            spent += 1
    return spent


# The campaign is the suite's slowest test: it runs in the default order and in the one that
# lost activities before listings read their order (newest first with both bounds).
@pytest.mark.parametrize("list_order", [LIST_ORDERS[0], LIST_ORDERS[2]])
def test_faults_everywhere_and_the_database_still_equals_stravas_truth(
    list_order, campaign_sandbox, instance, pg_url, tmp_path, monkeypatch, capsys
) -> None:
    sandbox, server = campaign_sandbox
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    monkeypatch.setenv("SYNC_ASSETS_STORAGE_URL", str(tmp_path / "parquet"))
    data_dir = tmp_path / "data"
    store = open_store(pg_url, data_dir)
    supabase = SupabaseResource(database_url=pg_url, data_dir=str(data_dir))
    resources = make_resources(
        sandbox,
        server,
        tmp_path,
        pg_url,
        data_dir,
        weather={
            "max_retries": 1,
            "breaker_reset_seconds": BREAKER_RESET,
            # A commercial Open-Meteo plan: the free 600 calls/minute would make the campaign
            # wait minutes for the weather of 5,000 activities over 10 years.
            "calls_per_minute": WEATHER_TIER.minutely,
            "calls_per_hour": int(WEATHER_TIER.hourly),
            "calls_per_day": int(WEATHER_TIER.daily),
        },
        max_retries=CLIENT_RETRIES,
        step_retries=3,
        step_retry_seconds=0.2,
        max_wait_seconds=60,
    )
    # The read window resets 15 s from now (sandbox clock), and it is tight.
    sandbox.set_clock((sandbox.now() // QUARTER + 1) * QUARTER - 15.0)
    server.weather.set_limits(WEATHER_TIER)
    sandbox.set_limits(RateLimits(read_15min=80, read_daily=1_000))

    users: list[str] = []
    athletes = []
    for n in SIZES:
        user, athlete = connect_user(store, sandbox, pg_url, n, years=max(1.0, n / 300))
        users.append(user)
        athletes.append(athlete)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, users)
    now_month = month_key(datetime.fromtimestamp(sandbox.now(), UTC))

    def first_month(i: int) -> str:
        acts = sandbox.activities(athletes[i].athlete_id)
        if not acts:
            return "2026-06-01"
        return month_key(datetime.fromisoformat(acts[0]["start_date"].replace("Z", "+00:00")))

    results = []

    def execute(tags: dict[str, str], *, enrich_only: bool = False):
        result = materialize(
            ASSETS,
            instance=instance,
            resources=resources,
            selection=[weather_enriched_activities, runs_table] if enrich_only else None,
            tags=tags,
            raise_on_error=False,
        )
        results.append(result)
        return result

    with WebhookServer(WebhookReceiver(store, VERIFY_TOKEN)) as hook:
        subscribed = httpx.post(
            f"{server.api_url}/push_subscriptions",
            data={
                "client_id": sandbox.client_id,
                "client_secret": sandbox.client_secret,
                "callback_url": hook.url,
                "verify_token": VERIFY_TOKEN,
            },
        )
        assert subscribed.status_code == 200

        foreign = exhaust_read_window(sandbox, server.api_url)
        # Every fault at once.
        big, mid = athletes[4].athlete_id, athletes[3].athlete_id
        sandbox.set_faults(
            latency_seconds=0.003,
            latency_jitter_seconds=0.003,
            error_5xx_rate=0.08,
            drop_connection_rate=0.04,
            truncate_body_next=2,
            malformed_page_next=1,
            malformed_activity_rate=0.002,
            revoke_after_requests={athletes[REVOKED].athlete_id: 1},
            mutate_between_pages=[
                {"athlete_id": big, "after_page": 4, "add": 4, "delete": 5, "where": "both"},
                {"athlete_id": mid, "after_page": 2, "add": 2, "delete": 2, "where": "inside"},
            ],
        )
        server.weather.set_faults(outage=True)
        # A 5xx burst longer than the client's retries, in the middle of the biggest listing:
        # the step retries and resumes from its checkpoint.
        burst = threading.Thread(
            target=burst_after_page, args=(sandbox, big, BURST_AFTER_PAGE), daemon=True
        )
        burst.start()

        # Round 1: each new athlete's whole history, as the new-user sensor asks for it.
        for i, user in enumerate(users):
            execute(
                {
                    ASSET_PARTITION_RANGE_START_TAG: f"{first_month(i)}|{user}",
                    ASSET_PARTITION_RANGE_END_TAG: f"{now_month}|{user}",
                }
            )
        revoked_user = users[REVOKED]
        burst.join(timeout=1)
        big_raw = results[4]
        assert run_metadata(big_raw, "raw_strava_activities")["resumed_from_checkpoint"] >= (
            BURST_AFTER_PAGE * 200 - 200
        )
        revoked_run = results[REVOKED]
        assert not revoked_run.success
        revoked_session = store.get_session(revoked_run.run_id, revoked_user)
        assert revoked_session.status == "failed"
        assert revoked_session.last_error["type"] == "AUTHENTICATION"
        assert revoked_session.last_error["retryable"] is False
        assert [r.success for i, r in enumerate(results) if i != REVOKED] == [True] * 4

        # The weather API comes back; failures are due for a retry once the breaker the outage
        # opened may close again (their retry_after).
        server.weather.clear_faults()
        time.sleep(BREAKER_RESET + 0.5)

        # Later rounds: what the daemon would run from the sensors, until nothing is left.
        webhook_cursor: str | None = None
        rounds = 0
        while True:
            rounds += 1
            assert rounds <= 6, "the sensors keep asking for runs"
            sandbox.push.flush()
            with build_sensor_context(
                instance=instance,
                resources={"supabase": supabase, "strava": resources["strava"]},
                cursor=webhook_cursor,
            ) as ctx:
                events = strava_webhook_events(ctx)
            requests = list(getattr(events, "run_requests", None) or [])
            if getattr(events, "cursor", None):
                webhook_cursor = events.cursor
            for request in getattr(events, "dynamic_partitions_requests", None) or []:
                instance.delete_dynamic_partition(USERS_PARTITIONS_NAME, request.partition_keys[0])
            for request in requests:
                assert execute(request.tags).success
            with build_sensor_context(instance=instance, resources={"supabase": supabase}) as ctx:
                weather = weather_retry_sensor(ctx)
            weather_requests = weather if isinstance(weather, list) else []
            for request in weather_requests:
                assert execute(request.tags, enrich_only=True).success
            if not requests and not weather_requests:
                # Nothing due now; weather failures that are retryable later are waited for.
                later = store.pending_enrichment(datetime.now(UTC) + timedelta(minutes=2))
                if not later:
                    break
                time.sleep(5.0)
        assert not sandbox.push.failed

    # The database equals Strava's truth, athlete by athlete.
    checked = quarantined = 0
    for i, (user, athlete) in enumerate(zip(users, athletes, strict=True)):
        if i == REVOKED:
            assert stored_rows(pg_url, user) == []  # deauthorized: nothing of it is kept
            continue
        corrupt = sandbox.malformed_activity_ids(athlete.athlete_id)
        truth = [
            truth_row(a) for a in sandbox.activities(athlete.athlete_id) if a["id"] not in corrupt
        ]
        stored = stored_rows(pg_url, user)
        assert [r[0] for r in stored] == sorted(r[0] for r in truth), f"user {i}: ids differ"
        assert stored == sorted(truth), f"user {i}: key fields differ"
        with psycopg.connect(pg_url) as conn:
            held = conn.execute(
                "select strava_id, reason from public.activity_quarantine where user_id = %s",
                (user,),
            ).fetchall()
            weather = conn.execute(
                "select enrichment_status->>'weather_status', count(*) from public.runs "
                "where user_id = %s group by 1",
                (user,),
            ).fetchall()
        # Nothing lost: each corrupt activity waits in quarantine with its reason.
        held_ids = {sid for sid, _ in held if sid is not None}
        with_id = {aid for aid, how in corrupt.items() if how != "id missing"}
        assert with_id <= held_ids
        assert len(held) >= len(corrupt) and all(reason for _, reason in held)
        assert "failed" not in dict(weather), f"user {i}: weather left failed: {weather}"
        checked += len(truth)
        quarantined += len(corrupt)

    # Every session completed but the revoked athlete's.
    with psycopg.connect(pg_url) as conn:
        sessions = conn.execute(
            "select user_id::text, status, last_error from public.sync_sessions"
        ).fetchall()
    for user, status, last_error in sessions:
        if user != revoked_user:
            assert status == "completed", (user, status, last_error)

    faults = Counter(r["fault"] for r in sandbox.requests if r["fault"])
    faults["429"] = sum(1 for r in sandbox.requests if r["status"] == 429)
    faults["weather outage"] = sum(
        1 for r in server.weather.requests if r["status"] >= 500 or r.get("fault")
    )
    faults["mutations"] = sum(len(m["added"]) + len(m["deleted"]) for m in sandbox.mutations)
    faults["corrupt activities"] = quarantined
    step_retries = sum(
        1
        for r in results
        for e in r.all_events
        if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY
    )
    request_retries = sum(
        run_metadata(r, asset.key.path[-1]).get("retries", 0) for r in results for asset in ASSETS
    )
    tally = {
        "seed": SEED,
        "list order": list_order,
        "runs": len(results),
        "sensor rounds": rounds,
        "faults injected": dict(sorted(faults.items())),
        "faults total": sum(faults.values()),
        "foreign reads": foreign,
        "step retries": step_retries,
        "request retries": request_retries,
        "activities checked": checked,
        "mismatches": 0,
    }
    with capsys.disabled():
        print("\nfault campaign:", json.dumps(tally))
    assert faults["429"] >= 1 and faults["5xx"] >= CLIENT_RETRIES + 1
    assert faults["weather outage"] >= 1 and step_retries >= 1
    close_stores()
