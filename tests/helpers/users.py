"""Users connected to sandbox athletes, as `sync-assets connect` leaves them."""

from __future__ import annotations

import uuid

from sync_assets_sandbox import AthleteHandle, StravaSandbox

from sync_assets.core.clients.tokens import StravaTokens
from sync_assets.core.storage import Store

from .databases import add_users


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
