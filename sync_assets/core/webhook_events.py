"""Strava's push events as the pipeline reads them: the event's shape (`WebhookEvent`, checked
before anything is stored) and what an event means (`is_deauthorization`). The receiver
(`sync_assets.apps.webhooks`) validates with it, the sensor (`sync_assets.sensors.webhooks`) reads
stored events with it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sync_assets.core.jsonsafe import unstorable

MAX_UPDATES_DEPTH = 8

# The database columns are bigint: a larger id must be refused here, not fail a whole batch.
_BIGINT_MAX = 2**63 - 1
BigId = Annotated[int, Field(gt=0, le=_BIGINT_MAX)]


class WebhookEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    object_type: Literal["activity", "athlete"]
    object_id: BigId
    aspect_type: Literal["create", "update", "delete"]
    owner_id: BigId
    subscription_id: Annotated[int, Field(ge=-_BIGINT_MAX, le=_BIGINT_MAX)] | None = None
    event_time: BigId
    updates: dict[str, Any] = Field(default_factory=dict)

    @field_validator("updates")
    @classmethod
    def _updates_storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        problem = unstorable(value, max_depth=MAX_UPDATES_DEPTH)
        if problem:
            raise ValueError(f"updates cannot be stored: {problem}")
        return value


def is_deauthorization(event: WebhookEvent | dict[str, Any]) -> bool:
    """An athlete update with `authorized: "false"`: the athlete revoked the app."""
    data = event.model_dump() if isinstance(event, WebhookEvent) else event
    return (
        data["object_type"] == "athlete"
        and str((data.get("updates") or {}).get("authorized", "")).lower() == "false"
    )
