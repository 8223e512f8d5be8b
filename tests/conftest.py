"""Shared fixtures: a real Strava sandbox on loopback, real token stores, real Dagster.

Fixtures (and pytest hooks) only: the helpers the tests share are in `tests/helpers`."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sync_assets_sandbox import AthleteHandle, SandboxServer, StravaSandbox

from sync_assets.core.clients.rate_limit import RateLimitBudget
from sync_assets.core.clients.strava import StravaClient
from sync_assets.core.storage import Store, close_stores, open_store

from .helpers import BOOTSTRAP, save_tokens
from .pg import ADMIN_URL, temporary_database


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
        save_tokens(token_store, uid, athlete)
        return uid, athlete

    return make


@pytest.fixture
def make_client(
    server: SandboxServer, sandbox: StravaSandbox, token_store: Store
) -> Iterator[Callable[..., StravaClient]]:
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
