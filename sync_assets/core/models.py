"""Validated shapes of what Strava sends, and the table `raw_strava_activities` holds.

Only what the pipeline relies on is validated strictly; everything else Strava sends is kept
verbatim in `payload`, so a new Strava field never breaks a sync and nothing is lost. A record
that fails validation is not dropped: `validate_page` returns it as a `QuarantinedActivity` with
the payload and the reason.

Strava's API description (developers.strava.com, SummaryActivity) makes every field optional,
and its own examples send `null` for what is unknown. So a record is stored whenever it can be:
only `id` and `start_date` are required (without them a row has no key or no month), and a
value of an impossible type or range is refused. A missing (absent or `null`) field is stored
as a neutral value, and the row says so in `data_quality` (see `DATA_QUALITY_NOTES`):

* `distance`, `moving_time`, `elapsed_time`: 0;
* `name`: "" (the app's `runs.name` is NOT NULL);
* `sport_type`: taken from the legacy `type`; without either, `UNKNOWN_SPORT_TYPE` ("Unknown",
  since `runs.sport_type` is NOT NULL), with `type` left null;
* `athlete` (or its `id`): `athlete_id` null;
* `manual`, `trainer`, `commute`, `private`, `has_heartrate`: false.

`moving_time` above `elapsed_time` (some devices) is stored as sent and noted too. Any
`sport_type` or `visibility` string is kept (Strava adds sport types), integers are numbers
wherever a float is typed, and `[]` or `null` coordinates mean "none".
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
    ModelWrapValidatorHandler,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    ValidationError,
    field_validator,
    model_validator,
)

from sync_assets.core.jsonsafe import unstorable

EARLIEST_ACTIVITY = datetime(1990, 1, 1, tzinfo=UTC)  # before GPS watches: certainly bad data
MAX_FUTURE = timedelta(days=2)  # clock skew and timezones, nothing more
MAX_LOCAL_OFFSET = timedelta(hours=18)  # start_date_local vs start_date: UTC-12 .. UTC+14
MAX_NAME_LENGTH = 2_000
MAX_LABEL_LENGTH = 200  # type, sport_type, timezone, visibility: short labels
MAX_PAYLOAD_BYTES = 1_000_000
BIGINT_MAX = 2**63 - 1  # ids land in bigint / int64 columns
UNKNOWN_SPORT_TYPE = "Unknown"  # stored when Strava sent neither sport_type nor type

# What Strava may leave out (absent or null), what is stored instead: the row notes it.
MISSING_DEFAULTS: dict[str, Any] = {
    "name": "",
    "distance": 0.0,
    "moving_time": 0,
    "elapsed_time": 0,
    "manual": False,
    "trainer": False,
    "commute": False,
    "private": False,
    "has_heartrate": False,
}
# The notes of `data_quality`, one short English phrase each.
DATA_QUALITY_NOTES: dict[str, str] = {
    **{f: f"{f} missing" for f in ("name", "distance", "moving_time", "elapsed_time")},
    **{
        f: f"{f} missing, read as false"
        for f in ("manual", "trainer", "commute", "private", "has_heartrate")
    },
    "sport_type": "sport_type missing, taken from type",
    "sport_type_and_type": f"sport_type and type missing, stored as {UNKNOWN_SPORT_TYPE}",
    "athlete": "athlete missing",
    "athlete_id": "athlete id missing",
    "moving_above_elapsed": "moving_time {moving} s above elapsed_time {elapsed} s",
}

# Numbers and flags are strict: Strava sends JSON numbers and booleans, so "5000", true or 12.5
# where an integer belongs is a broken record, not something to coerce.


class AthleteRef(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int | None = Field(default=None, gt=0, le=BIGINT_MAX, strict=True)


class SummaryActivity(BaseModel):
    """The fields of Strava's SummaryActivity that the `runs` table and enrichment need.

    Missing fields hold what is stored in their place (see the module's docstring);
    `quality_notes` says which ones were missing, and what else is odd but kept."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=False)
    _notes: tuple[str, ...] = PrivateAttr(default=())

    id: int = Field(gt=0, le=BIGINT_MAX, strict=True)
    athlete: AthleteRef | None = None
    name: str = Field(max_length=MAX_NAME_LENGTH)
    type: str | None = Field(default=None, max_length=MAX_LABEL_LENGTH)
    sport_type: str = Field(max_length=MAX_LABEL_LENGTH)
    start_date: datetime
    start_date_local: datetime | None = None
    timezone: str | None = Field(default=None, max_length=MAX_LABEL_LENGTH)
    distance: float = Field(ge=0, le=2_000_000, strict=True)  # meters; 2,000 km: ultra rides
    moving_time: int = Field(ge=0, le=30 * 86_400, strict=True)  # seconds
    elapsed_time: int = Field(ge=0, le=30 * 86_400, strict=True)
    total_elevation_gain: float | None = Field(default=None, ge=0, le=100_000, strict=True)
    average_speed: float | None = Field(default=None, ge=0, le=200, strict=True)  # m/s
    max_speed: float | None = Field(default=None, ge=0, le=500, strict=True)
    has_heartrate: StrictBool
    average_heartrate: float | None = Field(default=None, gt=0, le=260, strict=True)  # bpm
    max_heartrate: float | None = Field(default=None, gt=0, le=300, strict=True)
    start_latlng: list[StrictFloat] | None = None
    end_latlng: list[StrictFloat] | None = None
    manual: StrictBool
    trainer: StrictBool
    commute: StrictBool
    private: StrictBool
    visibility: str | None = Field(default=None, max_length=MAX_LABEL_LENGTH)

    @model_validator(mode="wrap")
    @classmethod
    def _fill_missing(cls, data: Any, handler: ModelWrapValidatorHandler[SummaryActivity]) -> Any:
        """Stand-ins for missing (absent or null) fields, each noted; then the validation."""
        if not isinstance(data, dict):
            return handler(data)
        notes: list[str] = []
        filled: dict[str, Any] = {}
        for key, default in MISSING_DEFAULTS.items():
            if data.get(key) is None:
                filled[key] = default
                notes.append(DATA_QUALITY_NOTES[key])
        if data.get("sport_type") is None:
            # Activities from before 2022 may lack sport_type in old exports; `type` is its
            # ancestor. A `type` of the wrong type is left to fail its own validation.
            legacy = data.get("type")
            if isinstance(legacy, str):
                filled["sport_type"] = legacy
                notes.append(DATA_QUALITY_NOTES["sport_type"])
            elif legacy is None:
                filled["sport_type"] = UNKNOWN_SPORT_TYPE
                notes.append(DATA_QUALITY_NOTES["sport_type_and_type"])
        athlete = data.get("athlete")
        if athlete is None:
            notes.append(DATA_QUALITY_NOTES["athlete"])
        elif isinstance(athlete, dict) and athlete.get("id") is None:
            notes.append(DATA_QUALITY_NOTES["athlete_id"])
        model = handler({**data, **filled} if filled else data)
        if model.moving_time > model.elapsed_time and "elapsed_time" not in filled:
            notes.append(
                DATA_QUALITY_NOTES["moving_above_elapsed"].format(
                    moving=model.moving_time, elapsed=model.elapsed_time
                )
            )
        model._notes = tuple(notes)
        return model

    @property
    def quality_notes(self) -> tuple[str, ...]:
        """What `data_quality` says: missing fields and stored stand-ins, odd values kept."""
        return self._notes

    @field_validator("start_date", "start_date_local", mode="before")
    @classmethod
    def _iso_text(cls, v: Any) -> Any:
        # Strava sends ISO 8601 text; a number would be read as a Unix time: refuse it.
        if v is not None and not isinstance(v, str):
            raise ValueError(f"must be an ISO 8601 string, not {type(v).__name__}")
        return v

    @field_validator("start_date")
    @classmethod
    def _plausible_start(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("start_date must carry a UTC offset (Strava sends ...Z)")
        try:
            v = v.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00
            raise ValueError("start_date is out of range") from None
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
        # moving_time above elapsed_time is kept: some devices send it (noted, see above).
        if self.start_date_local is not None:
            # Strava's local time is wall-clock time written with a "Z": only the offset apart.
            local = self.start_date_local.replace(tzinfo=None)
            if abs(local - self.start_date.replace(tzinfo=None)) > MAX_LOCAL_OFFSET:
                raise ValueError(
                    f"start_date_local {local.isoformat()} is more than "
                    f"{MAX_LOCAL_OFFSET.total_seconds() / 3600:.0f} h from start_date"
                )
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
    """The record as JSON text that any text column takes (valid UTF-8, no raw NUL): lone
    surrogates are kept as \\u escapes; what JSON cannot hold becomes its `str`."""
    for ascii_only in (False, True):
        try:
            text = json.dumps(raw, ensure_ascii=ascii_only, default=str)
            text.encode()
            return text[:MAX_PAYLOAD_BYTES]
        except (TypeError, ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
            continue
    return json.dumps(f"<unserializable {type(raw).__name__}>")


def _printable(reason: str) -> str:
    """A reason any text column and log takes: odd characters of field names escaped."""
    return reason.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")[:1000]


def _largest_field(raw: dict) -> str:
    sizes = {str(k): len(_dump(v)) for k, v in raw.items()}
    return max(sizes, key=sizes.__getitem__, default="record")


def validate_page(records: Iterable[Any]) -> ValidatedBatch:
    """Split a page into valid activities and quarantined ones (with the reason).

    Never raises: every record ends up in exactly one of the two lists."""
    batch = ValidatedBatch()

    def quarantine(activity_id: int | None, reason: str, payload: str) -> None:
        batch.quarantined.append(QuarantinedActivity(activity_id, _printable(reason), payload))

    for raw in records:
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        activity_id = (
            raw_id
            if isinstance(raw_id, int)
            and not isinstance(raw_id, bool)
            and -BIGINT_MAX - 1 <= raw_id <= BIGINT_MAX
            else None
        )
        if not isinstance(raw, dict):
            quarantine(None, "not a JSON object", _dump(raw))
            continue
        problem = unstorable(raw)
        if problem is not None:
            quarantine(activity_id, problem, _dump(raw))
            continue
        try:
            text = json.dumps(raw, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            quarantine(activity_id, f"record: not encodable as JSON ({exc})", _dump(raw))
            continue
        size = len(text.encode())
        if size > MAX_PAYLOAD_BYTES:
            quarantine(
                activity_id,
                f"payload of {size} bytes is over {MAX_PAYLOAD_BYTES} "
                f"(largest field: {_largest_field(raw)})",
                text[:MAX_PAYLOAD_BYTES],
            )
            continue
        try:
            batch.activities.append((SummaryActivity.model_validate(raw), text))
        except ValidationError as exc:
            quarantine(activity_id, _reason(exc), text)
        except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            # A validator tripped over something pydantic did not wrap: still a quarantine.
            quarantine(activity_id, f"record: {type(exc).__name__}: {exc}", text)
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
        # JSON list of short notes (`DATA_QUALITY_NOTES`), null when there is nothing to note.
        # Last, so that files written before it existed read with it added as null.
        ("data_quality", pa.string()),
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
    notes = a.quality_notes
    return {
        "user_id": user_id,
        "strava_id": a.id,
        "athlete_id": a.athlete.id if a.athlete is not None else None,
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
        "data_quality": json.dumps(list(notes), ensure_ascii=False) if notes else None,
    }


def quality_notes(data_quality: Any) -> list[str]:
    """The notes of a `data_quality` value (JSON text, a list, or null: none)."""
    if data_quality is None:
        return []
    if isinstance(data_quality, str):
        try:
            data_quality = json.loads(data_quality)
        except ValueError:
            return [data_quality]
    if isinstance(data_quality, list):
        return [str(n) for n in data_quality]
    return [str(data_quality)]


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


@dataclass(frozen=True)
class PartitionData:
    """One partition of `raw_strava_activities`: the accepted rows and the quarantined ones."""

    activities: pa.Table
    quarantine: pa.Table

    @classmethod
    def empty(cls) -> PartitionData:
        return cls(ACTIVITY_SCHEMA.empty_table(), QUARANTINE_SCHEMA.empty_table())
