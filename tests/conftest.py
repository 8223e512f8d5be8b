"""Shared fixtures: a real Strava sandbox on loopback, real token stores, real Dagster."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sync_assets_sandbox import AthleteHandle, SandboxServer, StravaSandbox

from sync_assets.migrations import plain_postgres_compat_sql
from sync_assets.partitions import month_key
from sync_assets.resources import (
    ParquetIOManager,
    StravaResource,
    SupabaseResource,
    WeatherResource,
)
from sync_assets.resources.rate_limit import RateLimitBudget
from sync_assets.resources.strava_client import StravaClient
from sync_assets.resources.tokens import StravaTokens
from sync_assets.storage import Store, close_stores, open_store

from .pg import ADMIN_URL, temporary_database

# The orders Strava might list activities in (it documents none): tests that count requests,
# resume or crash take `list_order` as a parameter to run in each.
LIST_ORDERS = ("oldest-first-with-after", "newest-first-always", "newest-first-when-bounded")


def quarter_not_midnight(now: float) -> float:
    """The next quarter-hour boundary (epoch seconds) that is not midnight UTC: a test of the
    15-minute window must not see the daily one reset with it when it runs near midnight."""
    boundary = (now // 900 + 1) * 900
    return boundary + 900 if boundary % 86_400 == 0 else boundary


@pytest.fixture
def list_order() -> str:
    """The sandbox's listing order; parametrize `list_order` to run a test in others."""
    return "oldest-first-with-after"


@pytest.fixture
def sandbox(list_order: str) -> Iterator[StravaSandbox]:
    yield StravaSandbox(seed=1234, list_order=list_order)


@pytest.fixture
def server(sandbox: StravaSandbox) -> Iterator[SandboxServer]:
    with SandboxServer(sandbox) as srv:
        yield srv


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def token_store(data_dir: Path) -> Iterator[Store]:
    """The embedded default store (SQLite) in a folder of the test's own."""
    yield open_store(None, data_dir)
    close_stores()


ClientFactory = Callable[..., StravaClient]


@pytest.fixture
def connect_athlete(
    sandbox: StravaSandbox, token_store: Store
) -> Callable[..., tuple[str, AthleteHandle]]:
    """Create a sandbox athlete and store its connection the way `sync-assets connect` does."""

    def make(
        n_activities: int, user_id: str | None = None, **kw: object
    ) -> tuple[str, AthleteHandle]:
        athlete = sandbox.add_athlete(n_activities=n_activities, **kw)
        uid = user_id or f"user-{athlete.athlete_id}"
        token_store.save_connection(
            uid,
            StravaTokens(
                access_token=athlete.access_token,
                refresh_token=athlete.refresh_token,
                expires_at=athlete.expires_at,
            ),
            athlete_id=athlete.athlete_id,
            scopes=athlete.scopes,
        )
        return uid, athlete

    return make


@pytest.fixture
def make_client(
    server: SandboxServer, sandbox: StravaSandbox, token_store: Store
) -> Iterator[ClientFactory]:
    clients: list[StravaClient] = []

    def make(user_id: str, *, budget: RateLimitBudget | None = None, **kw: object) -> StravaClient:
        options: dict[str, object] = {
            "backoff_base_seconds": 0.01,
            "backoff_max_seconds": 0.05,
            "timeout_seconds": 5.0,
        }
        options.update(kw)
        client = StravaClient(
            user_id=user_id,
            client_id=sandbox.client_id,
            client_secret=SecretStr(sandbox.client_secret),
            token_store=token_store,
            budget=budget or RateLimitBudget(max_wait_seconds=30),
            api_url=server.api_url,
            oauth_url=server.oauth_url,
            **options,
        )
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


# What `sync-assets db init --plain-postgres` adds to a plain PostgreSQL (Supabase's auth schema,
# roles and publication, reduced): the test databases are plain PostgreSQL too.
BOOTSTRAP = plain_postgres_compat_sql()


@pytest.fixture(scope="session")
def pg_roles() -> Iterator[None]:
    """Supabase's roles are cluster-wide: create the missing ones, drop only those at the end."""
    wanted = ["anon", "authenticated", "service_role", "sync_pipeline"]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        existing = {
            r[0]
            for r in conn.execute("select rolname from pg_roles where rolname = any(%s)", (wanted,))
        }
    yield
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        for role in wanted:
            if role not in existing:
                try:
                    conn.execute(f'drop role if exists "{role}"')
                except psycopg.errors.DependentObjectsStillExist:
                    # Some database not created by these tests still uses it: leave it there.
                    warnings.warn(f"role {role} is still in use; not dropped", stacklevel=1)


@pytest.fixture
def pg_url(pg_roles) -> Iterator[str]:
    with temporary_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(BOOTSTRAP)
        yield url


CHILD_ENV_DROPPED = ("DAGSTER_", "STRAVA_", "WEATHER_", "SYNC_ASSETS_", "OPENWEATHERMAP_")


def sandbox_env(
    sandbox: StravaSandbox, server: SandboxServer, home: Path, **overrides: str
) -> dict[str, str]:
    """The environment of a child process (the CLI, `dagster dev`): the embedded default in
    `home` against the sandboxes. This process's settings of Dagster, Strava, the weather API,
    the project or a database are left out, so nothing sends the child elsewhere; the venv's
    scripts come first on PATH, as in an activated venv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(CHILD_ENV_DROPPED) and k != "DATABASE_URL"
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        SYNC_ASSETS_HOME=str(home),
        STRAVA_CLIENT_ID=sandbox.client_id,
        STRAVA_CLIENT_SECRET=sandbox.client_secret,
        STRAVA_API_URL=server.api_url,
        STRAVA_OAUTH_URL=server.oauth_url,
        WEATHER_API_URL=server.weather_url,
        **overrides,
    )
    return env


CLI = Path(sys.executable).with_name("sync-assets")


def cli_connect(env: dict[str, str], user: str, refresh_token: str) -> None:
    """`sync-assets connect` in a child process, as a user would run it before a sync."""
    out = subprocess.run(
        [CLI, "connect", "--user", user, "--refresh-token", refresh_token],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def add_users(url: str, *ids: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for uid in ids:
            conn.execute("insert into auth.users (id) values (%s) on conflict do nothing", (uid,))


def make_resources(
    sandbox: StravaSandbox,
    server: SandboxServer,
    tmp_path: Path,
    database_url: str | None,
    data_dir: Path,
    weather: dict[str, object] | None = None,
    **strava_options: object,
) -> dict[str, object]:
    """The job's resources against the sandboxes, with short backoffs (tests wait less)."""
    supabase = SupabaseResource(database_url=database_url, data_dir=str(data_dir))
    weather_options: dict[str, object] = {
        "api_url": server.weather_url,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.05,
        "max_wait_seconds": 5.0,
    }
    weather_options.update(weather or {})
    return {
        "strava": StravaResource(
            **{
                "client_id": sandbox.client_id,
                "client_secret": sandbox.client_secret,
                "api_url": server.api_url,
                "oauth_url": server.oauth_url,
                "max_wait_seconds": 30,
                "backoff_base_seconds": 0.01,
                "backoff_max_seconds": 0.05,
                **strava_options,
            },
            supabase=supabase,
        ),
        "weather": WeatherResource(**weather_options),
        "parquet_io_manager": ParquetIOManager(base_path=str(tmp_path / "parquet")),
        "supabase": supabase,
    }


def sync_range(
    instance: object,
    resources: dict[str, object],
    user: str,
    first: str,
    last: str,
    *,
    enrich_only: bool = False,
    **tags: str,
):  # noqa: ANN201 - dagster's ExecuteInProcessResult
    """One single-run backfill of a user's months through the three assets (or the weather
    and store steps only), as the UI, a sensor or `sync-assets sync` would ask for it."""
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
        tags={
            ASSET_PARTITION_RANGE_START_TAG: f"{first}|{user}",
            ASSET_PARTITION_RANGE_END_TAG: f"{last}|{user}",
            **tags,
        },
        raise_on_error=False,
    )


RUN_PREFIX = "run_"


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


def connect_user(
    store: Store, sandbox: StravaSandbox, url: str | None, n_activities: int, **athlete: object
) -> tuple[str, AthleteHandle]:
    """A new sandbox athlete connected to a new user of `store` (with its `auth.users` row on
    PostgreSQL, `url`), as `sync-assets connect` would leave it."""
    handle = sandbox.add_athlete(n_activities=n_activities, **athlete)
    user = str(uuid.uuid4())
    if url:
        add_users(url, user)
    save_tokens(store, user, handle)
    return user, handle


def whole_history(sandbox: StravaSandbox, athlete: AthleteHandle) -> tuple[str, str]:
    """The months from the athlete's first activity to the sandbox's current month."""
    first = month_key(
        datetime.fromisoformat(sandbox.activities(athlete.athlete_id)[0]["start_date"])
    )
    return first, month_key(datetime.fromtimestamp(sandbox.now(), UTC))


def save_tokens(store: Store, user: str, athlete: AthleteHandle) -> None:
    """Store an athlete's sandbox tokens as `sync-assets connect` would."""
    store.save_connection(
        user,
        StravaTokens(
            access_token=athlete.access_token,
            refresh_token=athlete.refresh_token,
            expires_at=athlete.expires_at,
        ),
        athlete_id=athlete.athlete_id,
        scopes=athlete.scopes,  # what the OAuth redirect said the athlete granted
    )


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path: Path, monkeypatch) -> Iterator[tuple[str | None, Path]]:
    """(database URL or None, data folder): each test runs on the embedded SQLite store and on
    a throwaway Supabase-like PostgreSQL database."""
    data_dir = tmp_path / "data"
    if request.param == "sqlite":
        yield None, data_dir
    else:
        monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
        yield request.getfixturevalue("pg_url"), data_dir
    close_stores()
