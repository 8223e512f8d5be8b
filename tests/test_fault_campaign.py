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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet
from dagster import (
    DagsterEventType,
    DagsterInstance,
    ExecuteInProcessResult,
    build_sensor_context,
    instance_for_test,
    materialize,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from sync_assets_sandbox import RateLimits, SandboxServer, StravaSandbox, WeatherLimits

from sync_assets.apps.webhooks import WebhookReceiver, WebhookServer
from sync_assets.assets import raw_strava_activities, runs_table, weather_enriched_activities
from sync_assets.core.storage import Store, close_stores, open_store
from sync_assets.partitions import USERS_PARTITIONS_NAME, month_key
from sync_assets.resources import SupabaseResource
from sync_assets.sensors.enrichment import weather_retry_sensor
from sync_assets.sensors.webhooks import strava_webhook_events

from .helpers import LIST_ORDERS, connect_user, make_resources, run_metadata

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


@dataclass
class Campaign:
    """What the steps share: the sandboxes, Dagster's instance, the database and its store, the
    job's resources; the athletes (in `SIZES` order) and their users; the runs executed so far
    and the figures the tally reports."""

    sandbox: StravaSandbox
    server: SandboxServer
    instance: DagsterInstance
    pg_url: str
    store: Store
    supabase: SupabaseResource
    resources: dict[str, object]
    users: list[str] = field(default_factory=list)
    athletes: list = field(default_factory=list)  # the sandbox's AthleteHandles
    now_month: str = ""
    results: list[ExecuteInProcessResult] = field(default_factory=list)
    burst: threading.Thread | None = None
    foreign_reads: int = 0
    rounds: int = 0
    checked: int = 0
    quarantined: int = 0

    def execute(self, tags: dict[str, str], *, enrich_only: bool = False) -> ExecuteInProcessResult:
        """One run of the three assets (or the weather and store steps only), as the daemon
        would launch it; kept in `results`."""
        result = materialize(
            ASSETS,
            instance=self.instance,
            resources=self.resources,
            selection=[weather_enriched_activities, runs_table] if enrich_only else None,
            tags=tags,
            raise_on_error=False,
        )
        self.results.append(result)
        return result

    def first_month(self, i: int) -> str:
        acts = self.sandbox.activities(self.athletes[i].athlete_id)
        if not acts:
            return "2026-06-01"
        return month_key(datetime.fromisoformat(acts[0]["start_date"].replace("Z", "+00:00")))


# The campaign is the suite's slowest test: it runs in the default order and in the one that
# lost activities before listings read their order (newest first with both bounds).
@pytest.mark.parametrize("list_order", [LIST_ORDERS[0], LIST_ORDERS[2]])
def test_faults_everywhere_and_the_database_still_equals_stravas_truth(
    list_order, campaign_sandbox, instance, pg_url, tmp_path, monkeypatch, capsys
) -> None:
    campaign = _open_campaign(campaign_sandbox, instance, pg_url, tmp_path, monkeypatch)
    _tighten_the_limits(campaign)
    _connect_athletes(campaign)
    with WebhookServer(WebhookReceiver(campaign.store, VERIFY_TOKEN)) as hook:
        _subscribe_to_push_events(campaign, hook.url)
        _spend_the_read_window_elsewhere(campaign)
        _inject_every_fault(campaign)
        _sync_whole_histories(campaign)
        _check_the_burst_resumed_from_its_checkpoint(campaign)
        _check_only_the_revoked_athlete_failed(campaign)
        _bring_the_weather_back(campaign)
        _run_the_sensors_until_nothing_is_due(campaign)
    _check_the_database_equals_the_truth(campaign)
    _check_every_session_completed(campaign)
    faults = _count_faults(campaign)
    step_retries = _count_step_retries(campaign)
    _print_the_tally(campaign, list_order, faults, step_retries, capsys)
    _check_every_kind_of_fault_happened(faults, step_retries)
    close_stores()


def _open_campaign(
    campaign_sandbox: tuple[StravaSandbox, SandboxServer],
    instance: DagsterInstance,
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Campaign:
    """The store on the test's database, the job's resources with the campaign's retries and
    a commercial weather plan."""
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
    return Campaign(sandbox, server, instance, pg_url, store, supabase, resources)


def _tighten_the_limits(c: Campaign) -> None:
    """The read window resets 15 s from now (sandbox clock), and it is tight."""
    c.sandbox.set_clock((c.sandbox.now() // QUARTER + 1) * QUARTER - 15.0)
    c.server.weather.set_limits(WEATHER_TIER)
    c.sandbox.set_limits(RateLimits(read_15min=80, read_daily=1_000))


def _connect_athletes(c: Campaign) -> None:
    """One user per history size, connected and known to Dagster as a partition."""
    for n in SIZES:
        user, athlete = connect_user(c.store, c.sandbox, c.pg_url, n, years=max(1.0, n / 300))
        c.users.append(user)
        c.athletes.append(athlete)
    c.instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, c.users)
    c.now_month = month_key(datetime.fromtimestamp(c.sandbox.now(), UTC))


def _subscribe_to_push_events(c: Campaign, callback_url: str) -> None:
    """The app's push subscription, as production makes it: events reach the receiver."""
    subscribed = httpx.post(
        f"{c.server.api_url}/push_subscriptions",
        data={
            "client_id": c.sandbox.client_id,
            "client_secret": c.sandbox.client_secret,
            "callback_url": callback_url,
            "verify_token": VERIFY_TOKEN,
        },
    )
    assert subscribed.status_code == 200


def _spend_the_read_window_elsewhere(c: Campaign) -> None:
    """Another worker of the app spends the 15-minute reads: our first requests meet 429."""
    c.foreign_reads = exhaust_read_window(c.sandbox, c.server.api_url)


def _inject_every_fault(c: Campaign) -> None:
    """Every fault at once: latency, 5xx, dropped connections, cut bodies, a broken page,
    corrupt activities, a revocation, two histories changed while listed, the weather API down;
    and a 5xx burst longer than the client's retries in the middle of the biggest listing (the
    step retries and resumes from its checkpoint)."""
    big, mid = c.athletes[4].athlete_id, c.athletes[3].athlete_id
    c.sandbox.set_faults(
        latency_seconds=0.003,
        latency_jitter_seconds=0.003,
        error_5xx_rate=0.08,
        drop_connection_rate=0.04,
        truncate_body_next=2,
        malformed_page_next=1,
        malformed_activity_rate=0.002,
        revoke_after_requests={c.athletes[REVOKED].athlete_id: 1},
        mutate_between_pages=[
            {"athlete_id": big, "after_page": 4, "add": 4, "delete": 5, "where": "both"},
            {"athlete_id": mid, "after_page": 2, "add": 2, "delete": 2, "where": "inside"},
        ],
    )
    c.server.weather.set_faults(outage=True)
    c.burst = threading.Thread(
        target=burst_after_page, args=(c.sandbox, big, BURST_AFTER_PAGE), daemon=True
    )
    c.burst.start()


def _sync_whole_histories(c: Campaign) -> None:
    """Round 1: each new athlete's whole history, as the new-user sensor asks for it."""
    for i, user in enumerate(c.users):
        c.execute(
            {
                ASSET_PARTITION_RANGE_START_TAG: f"{c.first_month(i)}|{user}",
                ASSET_PARTITION_RANGE_END_TAG: f"{c.now_month}|{user}",
            }
        )
    assert c.burst is not None
    c.burst.join(timeout=1)


def _check_the_burst_resumed_from_its_checkpoint(c: Campaign) -> None:
    big_raw = c.results[4]
    assert run_metadata(big_raw, "raw_strava_activities")["resumed_from_checkpoint"] >= (
        BURST_AFTER_PAGE * 200 - 200
    )


def _check_only_the_revoked_athlete_failed(c: Campaign) -> None:
    """The revoked athlete's run failed for good (not retryable); every other run succeeded."""
    revoked_run = c.results[REVOKED]
    assert not revoked_run.success
    revoked_session = c.store.get_session(revoked_run.run_id, c.users[REVOKED])
    assert revoked_session.status == "failed"
    assert revoked_session.last_error["type"] == "AUTHENTICATION"
    assert revoked_session.last_error["retryable"] is False
    assert [r.success for i, r in enumerate(c.results) if i != REVOKED] == [True] * 4


def _bring_the_weather_back(c: Campaign) -> None:
    """The weather API comes back; failures are due for a retry once the breaker the outage
    opened may close again (their retry_after)."""
    c.server.weather.clear_faults()
    time.sleep(BREAKER_RESET + 0.5)


def _run_the_sensors_until_nothing_is_due(c: Campaign) -> None:
    """Later rounds: what the daemon would run from the sensors, until nothing is left."""
    webhook_cursor: str | None = None
    while True:
        c.rounds += 1
        assert c.rounds <= 6, "the sensors keep asking for runs"
        c.sandbox.push.flush()
        webhook_cursor, requests = _run_the_webhook_sensor(c, webhook_cursor)
        weather_requests = _run_the_weather_retry_sensor(c)
        if not requests and not weather_requests:
            # Nothing due now; weather failures that are retryable later are waited for.
            later = c.store.pending_enrichment(datetime.now(UTC) + timedelta(minutes=2))
            if not later:
                break
            time.sleep(5.0)
    assert not c.sandbox.push.failed


def _run_the_webhook_sensor(c: Campaign, cursor: str | None) -> tuple[str | None, list]:
    """The push events' sensor once: deauthorized users' partitions go, its runs succeed.
    Returns its cursor and its run requests."""
    with build_sensor_context(
        instance=c.instance,
        resources={"supabase": c.supabase, "strava": c.resources["strava"]},
        cursor=cursor,
    ) as ctx:
        events = strava_webhook_events(ctx)
    requests = list(getattr(events, "run_requests", None) or [])
    if getattr(events, "cursor", None):
        cursor = events.cursor
    for request in getattr(events, "dynamic_partitions_requests", None) or []:
        c.instance.delete_dynamic_partition(USERS_PARTITIONS_NAME, request.partition_keys[0])
    for request in requests:
        assert c.execute(request.tags).success
    return cursor, requests


def _run_the_weather_retry_sensor(c: Campaign) -> list:
    """The pending weather's sensor once: its runs (weather and store steps only) succeed."""
    with build_sensor_context(instance=c.instance, resources={"supabase": c.supabase}) as ctx:
        weather = weather_retry_sensor(ctx)
    weather_requests = weather if isinstance(weather, list) else []
    for request in weather_requests:
        assert c.execute(request.tags, enrich_only=True).success
    return weather_requests


def _check_the_database_equals_the_truth(c: Campaign) -> None:
    """The database equals Strava's truth, athlete by athlete: nothing of the revoked one is
    kept, nothing of the others is lost or left without its weather."""
    for i, (user, athlete) in enumerate(zip(c.users, c.athletes, strict=True)):
        if i == REVOKED:
            assert stored_rows(c.pg_url, user) == []  # deauthorized: nothing of it is kept
            continue
        corrupt = c.sandbox.malformed_activity_ids(athlete.athlete_id)
        truth = [
            truth_row(a) for a in c.sandbox.activities(athlete.athlete_id) if a["id"] not in corrupt
        ]
        stored = stored_rows(c.pg_url, user)
        assert [r[0] for r in stored] == sorted(r[0] for r in truth), f"user {i}: ids differ"
        assert stored == sorted(truth), f"user {i}: key fields differ"
        _check_nothing_lost(c, user, corrupt)
        _check_no_weather_left_failed(c, i, user)
        c.checked += len(truth)
        c.quarantined += len(corrupt)


def _check_nothing_lost(c: Campaign, user: str, corrupt: dict[int, str]) -> None:
    """Each corrupt activity waits in quarantine with its reason."""
    with psycopg.connect(c.pg_url) as conn:
        held = conn.execute(
            "select strava_id, reason from public.activity_quarantine where user_id = %s",
            (user,),
        ).fetchall()
    held_ids = {sid for sid, _ in held if sid is not None}
    with_id = {aid for aid, how in corrupt.items() if how != "id missing"}
    assert with_id <= held_ids
    assert len(held) >= len(corrupt) and all(reason for _, reason in held)


def _check_no_weather_left_failed(c: Campaign, i: int, user: str) -> None:
    with psycopg.connect(c.pg_url) as conn:
        weather = conn.execute(
            "select enrichment_status->>'weather_status', count(*) from public.runs "
            "where user_id = %s group by 1",
            (user,),
        ).fetchall()
    assert "failed" not in dict(weather), f"user {i}: weather left failed: {weather}"


def _check_every_session_completed(c: Campaign) -> None:
    """Every session completed but the revoked athlete's."""
    with psycopg.connect(c.pg_url) as conn:
        sessions = conn.execute(
            "select user_id::text, status, last_error from public.sync_sessions"
        ).fetchall()
    for user, status, last_error in sessions:
        if user != c.users[REVOKED]:
            assert status == "completed", (user, status, last_error)


def _count_faults(c: Campaign) -> Counter:
    """The faults the sandboxes injected or answered with, by kind."""
    faults = Counter(r["fault"] for r in c.sandbox.requests if r["fault"])
    faults["429"] = sum(1 for r in c.sandbox.requests if r["status"] == 429)
    faults["weather outage"] = sum(
        1 for r in c.server.weather.requests if r["status"] >= 500 or r.get("fault")
    )
    faults["mutations"] = sum(len(m["added"]) + len(m["deleted"]) for m in c.sandbox.mutations)
    faults["corrupt activities"] = c.quarantined
    return faults


def _count_step_retries(c: Campaign) -> int:
    return sum(
        1
        for r in c.results
        for e in r.all_events
        if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY
    )


def _print_the_tally(
    c: Campaign,
    list_order: str,
    faults: Counter,
    step_retries: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The campaign's figures on the terminal (seed included, to replay it)."""
    request_retries = sum(
        run_metadata(r, asset.key.path[-1]).get("retries", 0) for r in c.results for asset in ASSETS
    )
    tally = {
        "seed": SEED,
        "list order": list_order,
        "runs": len(c.results),
        "sensor rounds": c.rounds,
        "faults injected": dict(sorted(faults.items())),
        "faults total": sum(faults.values()),
        "foreign reads": c.foreign_reads,
        "step retries": step_retries,
        "request retries": request_retries,
        "activities checked": c.checked,
        "mismatches": 0,
    }
    with capsys.disabled():
        print("\nfault campaign:", json.dumps(tally))


def _check_every_kind_of_fault_happened(faults: Counter, step_retries: int) -> None:
    assert faults["429"] >= 1 and faults["5xx"] >= CLIENT_RETRIES + 1
    assert faults["weather outage"] >= 1 and step_retries >= 1
