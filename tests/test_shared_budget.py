"""One Strava budget for the whole application: concurrent runs against a tight limit.

Each "run" below has its own database pool and its own budget object, as separate processes
would; only the `strava_rate_budget` row is shared. The sandbox's clock drives the windows, and
waiting for a window means moving that clock (no test waits 15 minutes).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cryptography.fernet import Fernet
from dagster import instance_for_test, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from pydantic import SecretStr
from sync_assets_sandbox import RateLimits, StravaSandbox

from sync_assets.assets import raw_strava_activities
from sync_assets.core.clients.rate_limit import (
    NEVER,
    QUARTER,
    RateLimitBudget,
    SharedRateLimitBudget,
    app_key,
)
from sync_assets.core.clients.strava import StravaClient
from sync_assets.core.storage import close_stores, open_store
from sync_assets.core.storage.crypto import TokenCipher, keys_from_env
from sync_assets.core.storage.postgres import PostgresStore
from sync_assets.partitions import USERS_PARTITIONS_NAME, month_key

from .helpers import add_users, save_tokens

RUNS = 8
TIGHT = RateLimits(read_15min=12, read_daily=100_000, overall_15min=24, overall_daily=100_000)


@pytest.fixture
def tight(sandbox: StravaSandbox) -> StravaSandbox:
    sandbox.set_limits(TIGHT)
    return sandbox


@pytest.fixture
def pg(pg_url: str, monkeypatch) -> Iterator[str]:
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    yield pg_url
    close_stores()


def budget_client(
    sandbox: StravaSandbox, server, store: PostgresStore, user: str, budget: RateLimitBudget
) -> StravaClient:
    """A Strava client of `user` taking its requests from `budget`, with quick retries."""
    return StravaClient(
        user_id=user,
        client_id=sandbox.client_id,
        client_secret=SecretStr(sandbox.client_secret),
        token_store=store,
        budget=budget,
        api_url=server.api_url,
        oauth_url=server.oauth_url,
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.05,
        sleep=lambda s: None,
    )


def one_user(sandbox: StravaSandbox, pg: str) -> tuple[PostgresStore, str]:
    """A migrated store and one connected user of a small sandbox athlete."""
    store = PostgresStore(pg, TokenCipher(keys_from_env()))
    store.migrate()
    athlete = sandbox.add_athlete(n_activities=5)
    user = str(uuid.uuid4())
    add_users(pg, user)
    save_tokens(store, user, athlete)
    return store, user


def fetch_concurrently(
    sandbox, server, pg: str, make_budget: Callable[[PostgresStore], RateLimitBudget]
) -> tuple[dict[str, list[int]], dict[str, list[int]], list[RateLimitBudget]]:
    """RUNS users, each fetched by its own thread with its own pool and budget object."""
    setup = PostgresStore(pg, TokenCipher(keys_from_env()))
    setup.migrate()
    users, truth = [], {}
    for _ in range(RUNS):
        athlete = sandbox.add_athlete(n_activities=450)  # 3 list pages each: 24 in all
        user = str(uuid.uuid4())
        add_users(pg, user)
        save_tokens(setup, user, athlete)
        users.append(user)
        truth[user] = [a["id"] for a in sandbox.activities(athlete.athlete_id)]
    got: dict[str, list[int]] = {}
    budgets: list[RateLimitBudget] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(RUNS)

    def run(user: str) -> None:
        store = PostgresStore(pg, TokenCipher(keys_from_env()))
        budget = make_budget(store)
        budgets.append(budget)
        client = budget_client(sandbox, server, store, user, budget)
        try:
            barrier.wait()
            ids = []
            for page in client.iter_activity_pages(
                datetime(2000, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
            ):
                ids.extend(r["id"] for r in page.records)
            got[user] = sorted(ids)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            client.close()
            store.close()

    threads = [threading.Thread(target=run, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    setup.close()
    assert not errors, errors
    return got, truth, budgets


def advance(sandbox: StravaSandbox, lock: threading.Lock) -> Callable[[float], None]:
    """A sleep that moves the sandbox clock (once per window, however many threads wait)."""

    def sleep(seconds: float) -> None:
        with lock:
            target = sandbox.now() + seconds
            boundary = (int(sandbox.now() // QUARTER) + 1) * QUARTER
            if target > sandbox.now():
                sandbox.set_clock(max(target, boundary) if target >= boundary else target)
        time.sleep(0.01)

    return sleep


def test_runs_sharing_the_database_budget_never_meet_a_429(tight, server, pg) -> None:
    tight.set_clock(datetime(2026, 6, 1, 10, 0, 3, tzinfo=UTC).timestamp())
    app = app_key(server.api_url, tight.client_id)
    lock = threading.Lock()
    got, truth, budgets = fetch_concurrently(
        tight,
        server,
        pg,
        lambda store: SharedRateLimitBudget(
            store, app, max_wait_seconds=3600, clock=tight.now, sleep=advance(tight, lock)
        ),
    )
    assert got == {u: sorted(ids) for u, ids in truth.items()}  # nothing lost
    statuses = [r["status"] for r in tight.requests if r["kind"] == "api"]
    assert statuses.count(429) == 0
    assert len(statuses) == RUNS * 3  # every list request once, no retry needed
    assert sum(b.waits for b in budgets) > 0  # the limit was binding: 24 requests, 12 a window
    store = PostgresStore(pg, TokenCipher(keys_from_env()))
    row = store.budget_state(app)  # the limits Strava announced, learnt by every run
    assert (row["read_limit_15"], row["limit_15"]) == (12, 24)
    store.close()


def test_without_the_shared_budget_the_same_runs_overrun_the_window(tight, server, pg) -> None:
    """The control: per-process budgets learn usage only from headers, too late."""
    tight.set_clock(datetime(2026, 6, 1, 10, 0, 3, tzinfo=UTC).timestamp())
    lock = threading.Lock()
    got, truth, _ = fetch_concurrently(
        tight,
        server,
        pg,
        lambda store: RateLimitBudget(
            max_wait_seconds=3600, clock=tight.now, sleep=advance(tight, lock)
        ),
    )
    assert got == {u: sorted(ids) for u, ids in truth.items()}  # the client still recovers
    statuses = [r["status"] for r in tight.requests if r["kind"] == "api"]
    assert statuses.count(429) > 0


def test_a_fast_clock_cannot_strand_the_budget_in_a_future_window(tight, server, pg) -> None:
    """A process whose clock runs 20 minutes fast takes its first request before it has seen a
    `Date`, in a window the server has not reached. Once a response says what time it is, the
    row is back on the server's window: correct clocks spend the window and, at the next reset
    (not 20 minutes later), go on, without a 429."""
    tight.set_clock(datetime(2026, 6, 1, 10, 0, 3, tzinfo=UTC).timestamp())
    boundary = datetime(2026, 6, 1, 10, 15, tzinfo=UTC).timestamp()
    app = app_key(server.api_url, tight.client_id)
    setup, user = one_user(tight, pg)
    lock = threading.Lock()

    def client(clock: Callable[[], float]) -> StravaClient:
        budget = SharedRateLimitBudget(
            setup, app, max_wait_seconds=3600, clock=clock, sleep=advance(tight, lock)
        )
        return budget_client(tight, server, setup, user, budget)

    fast = client(lambda: tight.now() + 1200)
    fast.athlete()  # counted at 10:20 by its clock, at 10:00 by Strava's
    correct = client(tight.now)
    for _ in range(TIGHT.read_15min):  # 11 more fill 10:00-10:15; the 12th waits for 10:15
        correct.athlete()
    fast.athlete()  # the fast process now knows the server's clock too
    statuses = [r["status"] for r in tight.requests if r["kind"] == "api"]
    assert statuses == [200] * (TIGHT.read_15min + 2)
    assert boundary <= tight.now() < boundary + 60  # one reset waited for, not the 10:30 one
    state = setup.budget_state(app)
    assert state["window_15"] == int(boundary // QUARTER)
    assert state["read_usage_15"] == 2
    fast.close()
    correct.close()
    setup.close()


def test_a_run_that_has_seen_no_date_waits_for_the_reset_other_runs_learnt(
    tight, server, pg
) -> None:
    """Strava's clock is months from this machine's. A run that took a request before any
    response had told the application the time, and has sent none itself, is refused by a full
    window: it reads the clock other runs learnt and waits for Strava's reset, not its own."""
    tight.set_clock(datetime(2027, 6, 1, 10, 5, tzinfo=UTC).timestamp())
    boundary = datetime(2027, 6, 1, 10, 15, tzinfo=UTC).timestamp()
    app = app_key(server.api_url, tight.client_id)
    setup, user = one_user(tight, pg)
    lock, waits = threading.Lock(), []
    skew = 180 * 86_400.0 + 420  # this machine's clock is half a year (and 7 min) behind

    def wall() -> float:
        return tight.now() - skew  # moves when the sleeps below move Strava's clock

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        assert len(waits) == 1, f"waited again: {waits}"
        advance(tight, lock)(seconds)

    quiet = SharedRateLimitBudget(setup, app, max_wait_seconds=3600, clock=wall, sleep=sleep)
    quiet.acquire()  # before anybody knows Strava's clock (its request still to be sent)
    learning = SharedRateLimitBudget(setup, app, max_wait_seconds=3600, clock=wall)
    talker = budget_client(tight, server, setup, user, learning)
    for _ in range(TIGHT.read_15min - 1):
        talker.athlete()  # these learn Strava's clock, and fill its 10:00 window with quiet's
    quiet.acquire()  # the 12th
    quiet.acquire()  # the window is full: wait for 10:15 on Strava's clock
    assert len(waits) == 1
    assert boundary <= tight.now() < boundary + 60
    talker.close()
    setup.close()


def _dagster_run(args: dict, ready, go) -> bool:
    """One Dagster run in a process of its own (Dagster's instances are not for threads)."""
    import warnings

    warnings.filterwarnings("ignore")
    from sync_assets.resources import (
        ParquetIOManager,
        StravaResource,
        SupabaseResource,
        WeatherResource,
    )

    supabase = SupabaseResource(database_url=args["pg"], data_dir=args["data_dir"])
    resources = {
        "strava": StravaResource(
            client_id=args["client_id"],
            client_secret=args["client_secret"],
            api_url=args["api_url"],
            oauth_url=args["oauth_url"],
            max_wait_seconds=120,
            supabase=supabase,
        ),
        "weather": WeatherResource(api_url=args["weather_url"]),
        "parquet_io_manager": ParquetIOManager(base_path=args["parquet"]),
        "supabase": supabase,
    }
    user = args["user"]
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
        ready.release()
        go.wait(60)
        result = materialize(
            [raw_strava_activities],
            instance=instance,
            resources=resources,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: f"{args['first']}|{user}",
                ASSET_PARTITION_RANGE_END_TAG: f"{args['last']}|{user}",
            },
            raise_on_error=False,
        )
    close_stores()
    return result.success


def dagster_runs_at_once(
    common: dict, users: list[str], parquet: Callable[[str], Path], before_go: Callable[[], None]
) -> list[bool]:
    """One `_dagster_run` process per user, all released at once when every one is ready
    (`before_go` runs just before): whether each run succeeded."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    try:
        ready, go = manager.Semaphore(0), manager.Event()
        with ProcessPoolExecutor(len(users), mp_context=ctx) as pool:
            futures = [
                pool.submit(
                    _dagster_run, {**common, "user": u, "parquet": str(parquet(u))}, ready, go
                )
                for u in users
            ]
            for _ in users:
                assert ready.acquire(timeout=180)
            before_go()
            go.set()
            return [f.result(timeout=240) for f in futures]
    finally:
        manager.shutdown()


@pytest.mark.serial  # eight Dagster processes timed against one budget
def test_eight_concurrent_dagster_runs_share_one_budget(tight, server, pg, tmp_path) -> None:
    """Eight Dagster runs in eight processes at once, against 12 reads per 15 minutes: the
    first window's 12 requests are taken, the others wait for the next window (seconds away on
    the sandbox clock), and nobody meets a 429."""
    store = open_store(pg, tmp_path / "data")
    users, truth = [], {}
    for _ in range(RUNS):
        athlete = tight.add_athlete(n_activities=450, years=1.0)
        user = str(uuid.uuid4())
        add_users(pg, user)
        save_tokens(store, user, athlete)
        users.append(user)
        truth[user] = [a["id"] for a in tight.activities(athlete.athlete_id)]
    now = datetime.fromtimestamp(tight.now(), UTC)
    first, last = month_key(now - timedelta(days=370)), month_key(now)
    common = {
        "pg": pg,
        "data_dir": str(tmp_path / "data"),
        "client_id": tight.client_id,
        "client_secret": tight.client_secret,
        "api_url": server.api_url,
        "oauth_url": server.oauth_url,
        "weather_url": server.weather_url,
        "first": first,
        "last": last,
    }
    boundary = 0.0

    def window_opens_soon() -> None:
        # Everybody is ready: the next window opens 6 s from now on the sandbox clock.
        nonlocal boundary
        boundary = (int(tight.now() // QUARTER) + 1) * QUARTER
        tight.set_clock(boundary - 6)
        tight.reset_usage()
        tight.clear_requests()

    results = dagster_runs_at_once(
        common, users, lambda u: tmp_path / u / "parquet", before_go=window_opens_soon
    )
    assert results == [True] * RUNS
    statuses = [r["status"] for r in tight.requests if r["kind"] == "api"]
    assert statuses.count(429) == 0
    assert len(statuses) == RUNS * 3  # every list request once
    for user in users:
        files = list((tmp_path / user / "parquet").rglob("activities.parquet"))
        ids = sorted(i for f in files for i in pq.read_table(f).column("strava_id").to_pylist())
        assert ids == sorted(truth[user])  # nothing lost, nothing twice
    assert tight.now() > boundary  # they did wait for the next window


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_budget_row_counts_rolls_and_never_goes_back(backend, request, tmp_path) -> None:
    if backend == "postgres":
        request.getfixturevalue("pg")
        store = open_store(request.getfixturevalue("pg_url"), tmp_path / "data")
    else:
        store = open_store(None, tmp_path / "data")
    app, t = "app-1", 1_800_000_000.0  # a quarter-hour boundary
    w = {"now": t, "w15": int(t // QUARTER), "wday": int(t // 86_400)}
    limits = {"limit_15": 10, "limit_day": 100, "read_limit_15": 3, "read_limit_day": 50}
    unknown = dict.fromkeys(("usage_15", "usage_day", "read_usage_15", "read_usage_day"))
    store.budget_ensure(app)  # what a SharedRateLimitBudget does when it is made
    store.budget_ensure(app)  # and again, by another run: still one row
    store.budget_observe(
        app,
        w15=w["w15"],
        wday=w["wday"],
        w15_latest=NEVER,
        wday_latest=NEVER,
        exhausted_until=0.0,
        clock_offset=1.5,
        **limits,
        **unknown,
    )
    assert [store.budget_take(app, read=1, **w) for _ in range(4)] == [True, True, True, False]
    assert store.budget_take(app, read=0, **w)  # writes count against the overall limit only
    late = {**w, "now": t - 1000, "w15": w["w15"] - 1}  # a caller whose clock lags
    assert not store.budget_take(app, read=1, **late)
    nxt = {"now": t + QUARTER, "w15": w["w15"] + 1, "wday": w["wday"]}
    assert store.budget_take(app, read=1, **nxt)  # a new window: room again
    state = store.budget_state(app)
    assert (state["read_usage_15"], state["read_usage_day"], state["usage_day"]) == (1, 4, 5)
    assert state["clock_offset"] == 1.5
    # A fast clock opened a window an hour ahead; then a response dated now comes back.
    ahead = {"now": t + 3600, "w15": w["w15"] + 4, "wday": w["wday"]}
    assert store.budget_take(app, read=1, **ahead)
    dated = {"w15": w["w15"] + 1, "wday": w["wday"], "w15_latest": w["w15"] + 1}
    store.budget_observe(
        app,
        **dated,
        wday_latest=w["wday"],
        exhausted_until=0.0,
        clock_offset=0.0,
        **limits,
        **unknown,
    )
    state = store.budget_state(app)
    assert state["window_15"] == w["w15"] + 1  # back on the server's window
    assert state["read_usage_15"] == 1  # and what the stranded window counted is kept
    assert state["read_usage_day"] == 5
    close_stores()
