"""`StravaResource`: the Dagster face of the Strava client, configured from the environment."""

import logging
from typing import Any

from dagster import ConfigurableResource, ResourceDependency
from pydantic import Field, SecretStr

from sync_assets.core.clients.rate_limit import (
    RateLimitBudget,
    SharedRateLimitBudget,
    app_key,
    shared_budget,
)
from sync_assets.core.clients.strava import DEFAULT_API_URL, DEFAULT_OAUTH_URL, StravaClient
from sync_assets.resources.supabase import SupabaseResource


class StravaResource(ConfigurableResource):
    """One Strava application (client id + secret) and how politely to call it.

    Set `client_secret` with `EnvVar("STRAVA_CLIENT_SECRET")` so that its value never appears in
    the Dagster UI or in run config.
    """

    client_id: str = Field(description="STRAVA_CLIENT_ID")
    client_secret: str = Field(description="STRAVA_CLIENT_SECRET (pass as EnvVar)")
    api_url: str = Field(default=DEFAULT_API_URL, description="STRAVA_API_URL")
    oauth_url: str = Field(default=DEFAULT_OAUTH_URL, description="STRAVA_OAUTH_URL")
    max_wait_seconds: float = Field(
        default=900.0,
        description="STRAVA_MAX_WAIT_SECONDS: the longest wait for a rate-limit window to reset "
        "inside a run; beyond it the run stops with a retryable RATE_LIMIT error",
    )
    max_retries: int = Field(default=5, description="retries of network errors and 5xx")
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    timeout_seconds: float = 30.0
    step_retries: int = Field(
        default=3, description="step re-attempts after the client's own retries gave up"
    )
    step_retry_seconds: float = Field(default=30.0, description="first step re-attempt delay")
    refresh_margin_seconds: float = Field(
        default=300.0, description="refresh the access token this long before it expires"
    )
    shared_budget: bool = Field(
        default=True,
        description="keep the app-wide request budget in the database, shared by every run in "
        "every process (off: one budget per process, learnt from Strava's headers)",
    )
    supabase: ResourceDependency[SupabaseResource]

    def budget(self) -> RateLimitBudget:
        """The app's request budget: in the database (all runs) or this process's."""
        if self.shared_budget:
            return SharedRateLimitBudget(
                self.supabase.store(),
                app_key(self.api_url, self.client_id),
                max_wait_seconds=self.max_wait_seconds,
            )
        return shared_budget(self.api_url, self.client_id, max_wait_seconds=self.max_wait_seconds)

    def client(
        self, user_id: str, logger: logging.Logger | Any = None, max_retries: int | None = None
    ) -> StravaClient:
        """A client acting for `user_id`; every client of this app shares one rate budget.
        `max_retries`: the run's own (`SyncOptions.max_retries`) instead of the resource's."""
        return StravaClient(
            user_id=user_id,
            client_id=self.client_id,
            client_secret=SecretStr(self.client_secret),
            token_store=self.supabase.store(),
            budget=self.budget(),
            api_url=self.api_url,
            oauth_url=self.oauth_url,
            max_retries=self.max_retries if max_retries is None else max_retries,
            backoff_base_seconds=self.backoff_base_seconds,
            backoff_max_seconds=self.backoff_max_seconds,
            timeout_seconds=self.timeout_seconds,
            refresh_margin_seconds=self.refresh_margin_seconds,
            logger=logger,
        )
