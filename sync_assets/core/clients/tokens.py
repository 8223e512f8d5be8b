"""Where each user's Strava tokens live, and the one safe way to change them.

Strava may rotate the refresh token on every refresh and the old one then stops working, so a
refreshed token pair must be committed *before* the new access token is used, and two workers
must never refresh the same user at once (the loser's refresh token would already be dead).
`TokenStore.update_tokens` does both: it runs the refresh under a per-user lock and commits its
result before returning. Both storage backends (`sync_assets.core.storage`) implement it, with the
tokens encrypted at rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, SecretStr


class StravaTokens(BaseModel):
    """An access/refresh token pair; `SecretStr` keeps them out of reprs and logs."""

    access_token: SecretStr
    refresh_token: SecretStr
    expires_at: int  # epoch seconds, Strava's clock

    def expires_within(self, seconds: float, now: float) -> bool:
        return self.expires_at - seconds <= now


@dataclass(frozen=True)
class StravaConnection:
    user_id: str
    athlete_id: int | None
    scopes: str | None
    status: str
    status_reason: str | None
    tokens: StravaTokens


class TokenStore(Protocol):
    def save_connection(
        self,
        user_id: str,
        tokens: StravaTokens,
        *,
        athlete_id: int | None = None,
        scopes: str | None = None,
    ) -> None: ...

    def get(self, user_id: str) -> StravaConnection: ...

    def update_tokens(
        self, user_id: str, update: Callable[[StravaTokens], StravaTokens]
    ) -> StravaTokens: ...

    def mark_revoked(self, user_id: str, reason: str) -> None: ...

    def list_connections(self, status: str | None = "active") -> list[StravaConnection]: ...
