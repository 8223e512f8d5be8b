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
from sync_assets.core.migrations import migrate_postgres
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


SUPABASE_ROLES = ["anon", "authenticated", "service_role", "sync_pipeline"]


def _existing_roles() -> set[str]:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute(
            "select rolname from pg_roles where rolname = any(%s)", (SUPABASE_ROLES,)
        ).fetchall()
    return {r[0] for r in rows}


def _is_worker(config: pytest.Config) -> bool:
    """An xdist worker (scripts/test runs the suite on several): the controller owns the roles."""
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    """Supabase's roles are cluster-wide, shared by every worker's databases: the controller
    (or the only process) notes which exist before any test; it drops only the others, once
    every worker is done (`pytest_unconfigure`)."""
    if _is_worker(config):
        return
    try:
        config.stash[_ROLES_BEFORE] = _existing_roles()
    except psycopg.OperationalError:
        return  # no server: the tests that need it fail and say so
    # Created once here, before the workers start: two workers' bootstraps creating a missing
    # role at the same moment would collide. A throwaway database, bootstrapped and migrated as
    # a test's is, creates them with the project's own SQL.
    with temporary_database("sa_roles") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(BOOTSTRAP)
        with psycopg.connect(url) as conn:
            migrate_postgres(conn)


def pytest_unconfigure(config: pytest.Config) -> None:
    before = config.stash.get(_ROLES_BEFORE, None)
    if _is_worker(config) or before is None:
        return
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        for role in SUPABASE_ROLES:
            if role in before:
                continue
            try:
                conn.execute(f'drop role if exists "{role}"')
            except psycopg.errors.DependentObjectsStillExist:
                # Some database not created by these tests still uses it: leave it there.
                warnings.warn(f"role {role} is still in use; not dropped", stacklevel=1)


_ROLES_BEFORE = pytest.StashKey[set[str]]()


@pytest.fixture(scope="session")
def pg_roles() -> None:
    """The Supabase roles' databases need: created by each database's bootstrap when missing,
    dropped at the end of the run by `pytest_unconfigure` (the ones that were not there)."""


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
