"""Validated shapes of what Strava sends, and the table `raw_strava_activities` holds.

Only what the pipeline relies on is validated strictly; everything else Strava sends is kept
verbatim in `payload`, so a new Strava field never breaks a sync and nothing is lost. A record
that fails validation is not dropped: `validate_page` returns it as a `QuarantinedActivity` with
the payload and the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

EARLIEST_ACTIVITY = datetime(1990, 1, 1, tzinfo=UTC)  # before GPS watches: certainly bad data
MAX_FUTURE = timedelta(days=2)  # clock skew and timezones, nothing more
MAX_NAME_LENGTH = 2_000
MAX_PAYLOAD_BYTES = 1_000_000


class AthleteRef(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int = Field(gt=0)


class SummaryActivity(BaseModel):
    """The fields of Strava's SummaryActivity that the `runs` table and enrichment need."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=False)

    id: int = Field(gt=0)
    athlete: AthleteRef
    name: str = Field(max_length=MAX_NAME_LENGTH)
    type: str | None = None
    sport_type: str
    start_date: datetime
    start_date_local: datetime | None = None
    timezone: str | None = None
    distance: float = Field(ge=0, le=2_000_000)  # meters; 2,000 km covers ultra rides
    moving_time: int = Field(ge=0, le=30 * 86_400)  # seconds
    elapsed_time: int = Field(ge=0, le=30 * 86_400)
    total_elevation_gain: float | None = Field(default=None, ge=0, le=100_000)
    average_speed: float | None = Field(default=None, ge=0, le=200)  # m/s
    max_speed: float | None = Field(default=None, ge=0, le=500)
    has_heartrate: StrictBool = False
    average_heartrate: float | None = Field(default=None, gt=0, le=260)  # bpm
    max_heartrate: float | None = Field(default=None, gt=0, le=300)
    start_latlng: list[float] | None = None
    end_latlng: list[float] | None = None
    manual: StrictBool = False
    trainer: StrictBool = False
    commute: StrictBool = False
    private: StrictBool = False
    visibility: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _sport_type_from_type(cls, data: Any) -> Any:
        # Activities from before 2022 may lack sport_type in old exports; `type` is its ancestor.
        if (
            isinstance(data, dict)
            and data.get("sport_type") is None
            and isinstance(data.get("type"), str)
        ):
            data = {**data, "sport_type": data["type"]}
        return data

    @field_validator("start_date")
    @classmethod
    def _plausible_start(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("start_date must carry a UTC offset (Strava sends ...Z)")
        v = v.astimezone(UTC)
        if v < EARLIEST_ACTIVITY:
            raise ValueError(f"start_date {v.isoformat()} is before {EARLIEST_ACTIVITY.year}")
        if v > datetime.now(UTC) + MAX_FUTURE:
            raise ValueError(f"start_date {v.isoformat()} is in the future")
        return v

    @field_validator("start_latlng", "end_latlng")
    @classmethod
    def _latlng(cls, v: list[float] | None) -> list[float] | None:
        if not v:  # Strava sends [] (or null) for manual and indoor activities
            return None
        if len(v) != 2:
            raise ValueError("a coordinate is [latitude, longitude]")
        lat, lng = v
        if not (-90 <= lat <= 90 and -180 <= lng <= 180):
            raise ValueError(f"coordinate {v} is out of range")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> SummaryActivity:
        if self.moving_time > self.elapsed_time + 60:
            raise ValueError("moving_time exceeds elapsed_time")
        return self


@dataclass(frozen=True)
class QuarantinedActivity:
    """A record we could not accept, kept whole so that nothing is silently dropped."""

    activity_id: int | None
    reason: str
    payload: str  # the raw JSON as received (cut to MAX_PAYLOAD_BYTES)


@dataclass
class ValidatedBatch:
    activities: list[tuple[SummaryActivity, str]] = field(default_factory=list)  # (model, json)
    quarantined: list[QuarantinedActivity] = field(default_factory=list)


def _reason(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False, include_input=False)[:5]:
        loc = ".".join(str(p) for p in e["loc"]) or "record"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def _dump(raw: Any) -> str:
    text = json.dumps(raw, ensure_ascii=False, default=str)
    return text[:MAX_PAYLOAD_BYTES]


def validate_page(records: Iterable[Any]) -> ValidatedBatch:
    """Split a page into valid activities and quarantined ones (with the reason)."""
    batch = ValidatedBatch()
    for raw in records:
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        activity_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None
        if not isinstance(raw, dict):
            batch.quarantined.append(QuarantinedActivity(None, "not a JSON object", _dump(raw)))
            continue
        try:
            text = json.dumps(raw, ensure_ascii=False)
        except (TypeError, ValueError) as exc:  # e.g. lone surrogates
            batch.quarantined.append(
                QuarantinedActivity(activity_id, f"unencodable: {exc}", _dump(raw))
            )
            continue
        if len(text) > MAX_PAYLOAD_BYTES:
            batch.quarantined.append(
                QuarantinedActivity(
                    activity_id, f"payload over {MAX_PAYLOAD_BYTES} bytes", text[:MAX_PAYLOAD_BYTES]
                )
            )
            continue
        try:
            batch.activities.append((SummaryActivity.model_validate(raw), text))
        except ValidationError as exc:
            batch.quarantined.append(QuarantinedActivity(activity_id, _reason(exc), text))
    return batch


ACTIVITY_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("strava_id", pa.int64()),
        ("athlete_id", pa.int64()),
        ("name", pa.string()),
        ("type", pa.string()),
        ("sport_type", pa.string()),
        ("start_date", pa.timestamp("s", tz="UTC")),
        ("start_date_local", pa.timestamp("s")),
        ("timezone", pa.string()),
        ("distance_meters", pa.float64()),
        ("moving_time_seconds", pa.int64()),
        ("elapsed_time_seconds", pa.int64()),
        ("total_elevation_gain_meters", pa.float64()),
        ("average_speed_mps", pa.float64()),
        ("max_speed_mps", pa.float64()),
        ("has_heartrate", pa.bool_()),
        ("average_heartrate_bpm", pa.float64()),
        ("max_heartrate_bpm", pa.float64()),
        ("start_lat", pa.float64()),
        ("start_lng", pa.float64()),
        ("end_lat", pa.float64()),
        ("end_lng", pa.float64()),
        ("manual", pa.bool_()),
        ("trainer", pa.bool_()),
        ("commute", pa.bool_()),
        ("private", pa.bool_()),
        ("visibility", pa.string()),
        ("payload", pa.string()),  # the full Strava JSON, verbatim
        ("fetched_at", pa.timestamp("s", tz="UTC")),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("strava_id", pa.int64()),
        ("reason", pa.string()),
        ("payload", pa.string()),
        ("fetched_at", pa.timestamp("s", tz="UTC")),
    ]
)


def activity_row(user_id: str, a: SummaryActivity, payload: str, fetched_at: datetime) -> dict:
    start, end = a.start_latlng or [None, None], a.end_latlng or [None, None]
    local = a.start_date_local.replace(tzinfo=None) if a.start_date_local else None
    return {
        "user_id": user_id,
        "strava_id": a.id,
        "athlete_id": a.athlete.id,
        "name": a.name,
        "type": a.type,
        "sport_type": a.sport_type,
        "start_date": a.start_date,
        "start_date_local": local,
        "timezone": a.timezone,
        "distance_meters": a.distance,
        "moving_time_seconds": a.moving_time,
        "elapsed_time_seconds": a.elapsed_time,
        "total_elevation_gain_meters": a.total_elevation_gain,
        "average_speed_mps": a.average_speed,
        "max_speed_mps": a.max_speed,
        "has_heartrate": a.has_heartrate,
        "average_heartrate_bpm": a.average_heartrate if a.has_heartrate else None,
        "max_heartrate_bpm": a.max_heartrate if a.has_heartrate else None,
        "start_lat": start[0],
        "start_lng": start[1],
        "end_lat": end[0],
        "end_lng": end[1],
        "manual": a.manual,
        "trainer": a.trainer,
        "commute": a.commute,
        "private": a.private,
        "visibility": a.visibility,
        "payload": payload,
        "fetched_at": fetched_at,
    }


def activities_table(rows: Sequence[dict]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=ACTIVITY_SCHEMA)


def quarantine_table(
    user_id: str, items: Sequence[QuarantinedActivity], fetched_at: datetime
) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "user_id": user_id,
                "strava_id": q.activity_id,
                "reason": q.reason,
                "payload": q.payload,
                "fetched_at": fetched_at,
            }
            for q in items
        ],
        schema=QUARANTINE_SCHEMA,
    )
