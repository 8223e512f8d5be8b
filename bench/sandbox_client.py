"""What the fetch benchmarks share: one sandbox athlete connected to a store, its client, and
the span of its whole history."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import SecretStr
from sync_assets_sandbox import AthleteHandle, SandboxServer, StravaSandbox

from sync_assets.core.clients.rate_limit import RateLimitBudget
from sync_assets.core.clients.strava import StravaClient
from sync_assets.core.clients.tokens import StravaTokens
from sync_assets.core.storage import Store
from sync_assets.partitions import SyncSpan

USER = "bench"


def months_between(first: datetime, last: datetime) -> tuple[str, ...]:
    months, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        months.append(f"{y:04d}-{m:02d}-01")
        y, m = y + m // 12, m % 12 + 1
    return tuple(months)


def whole_history(sandbox: StravaSandbox) -> SyncSpan:
    """The benchmark user's months from 2009 (Strava's start) to the sandbox's now."""
    now = datetime.fromtimestamp(sandbox.now(), UTC)
    return SyncSpan(USER, months_between(datetime(2009, 1, 1, tzinfo=UTC), now))


def connect(store: Store, athlete: AthleteHandle, user: str = USER) -> None:
    """Store an athlete's sandbox tokens as `sync-assets connect` would."""
    store.save_connection(
        user,
        StravaTokens(
            access_token=athlete.access_token,
            refresh_token=athlete.refresh_token,
            expires_at=athlete.expires_at,
        ),
        athlete_id=athlete.athlete_id,
        scopes=athlete.scopes,
    )


def client(
    sandbox: StravaSandbox, server: SandboxServer, store: Store, **options: object
) -> StravaClient:
    return StravaClient(
        user_id=USER,
        client_id=sandbox.client_id,
        client_secret=SecretStr(sandbox.client_secret),
        token_store=store,
        budget=RateLimitBudget(),
        api_url=server.api_url,
        oauth_url=server.oauth_url,
        **options,
    )
