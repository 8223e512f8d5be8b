"""Deterministic synthetic Strava athletes: plausible SummaryActivity payloads from a seed.

Same inputs, same output, byte for byte (a `random.Random` per athlete; no wall clock, no
global random state), so a test or a demo can compare what a client stored with what
"Strava" holds. The data carries what real histories carry and clients trip over: a sport mix
led by runs; one to three home bases on several continents with their time zones (daylight
saving time included in `utc_offset` and `start_date_local`); manual entries and indoor
activities without coordinates (`null`, as in Strava's API examples) nor route (a `null`
`summary_polyline`); private activities; activities without heart rate; unicode and emoji
names; power, cadence and gear on some activities only; and a few duplicate uploads that share
their start second with another activity.

Every payload stays within Strava's published SummaryActivity schema (official `sport_type`
and `type` values only), and carries the shapes that schema allows and clients often refuse
(see `_apply_shapes`): `distance` left out on some no-distance sports (yoga, strength,
workouts), `moving_time` above `elapsed_time` on about 0.5% (a device quirk), whole numbers
sent as JSON integers where a float is typed (as Strava's examples show `"max_speed": 11`),
`device_name` on device uploads ("Garmin Forerunner 255", "Zwift", "Strava App"...),
`hide_from_home` flags, and a small share of rarer sport types (Badminton, Pickleball, Padel,
HighIntensityIntervalTraining, Pilates, Elliptical, Rowing...) with their legacy `type`. These
are drawn from a random stream of their own (per athlete, or per activity for a new upload), so
every other value is the one the history had without them.
"""

from __future__ import annotations

from sync_assets_sandbox.athletes.activities import (
    DEFAULT_ID_START,
    DEVICE_IDS,
    DUPLICATE_UPLOAD_RATE,
    START_HOUR_CUM,
    VIRTUAL_DEVICE_IDS,
    default_years,
    generate_activities,
    make_activity,
)
from sync_assets_sandbox.athletes.geo import encode_polyline, timezone_label, utc_offset_seconds
from sync_assets_sandbox.athletes.profiles import (
    SyntheticAthlete,
    athlete_profile,
    iso,
    synthetic_athlete,
)
from sync_assets_sandbox.athletes.shapes import (
    BIKE_COMPUTERS,
    DEVICE_NAME_SHARE,
    FLOAT_FIELDS,
    HIDE_FROM_HOME_SHARE,
    INTEGER_NUMBERS_SHARE,
    MISSING_DISTANCE_SHARE,
    MOVING_ABOVE_ELAPSED_SHARE,
    NO_DISTANCE_SPORTS,
    RARE_SPORT_SHARE,
    RARE_SPORTS,
    WATCHES,
)
from sync_assets_sandbox.athletes.tables import (
    CITIES,
    CUSTOM_NAMES,
    FAMILY,
    FIRST_NAMES,
    LAST_NAMES,
    PARTS_OF_DAY,
    RUN,
    SPORT_WORDS,
    SPORTS,
    START_HOURS,
    City,
    Sport,
)

__all__ = [
    "BIKE_COMPUTERS",
    "CITIES",
    "CUSTOM_NAMES",
    "City",
    "DEFAULT_ID_START",
    "DEVICE_IDS",
    "DEVICE_NAME_SHARE",
    "DUPLICATE_UPLOAD_RATE",
    "FAMILY",
    "FIRST_NAMES",
    "FLOAT_FIELDS",
    "HIDE_FROM_HOME_SHARE",
    "INTEGER_NUMBERS_SHARE",
    "LAST_NAMES",
    "MISSING_DISTANCE_SHARE",
    "MOVING_ABOVE_ELAPSED_SHARE",
    "NO_DISTANCE_SPORTS",
    "PARTS_OF_DAY",
    "RARE_SPORTS",
    "RARE_SPORT_SHARE",
    "RUN",
    "SPORTS",
    "SPORT_WORDS",
    "START_HOURS",
    "START_HOUR_CUM",
    "Sport",
    "SyntheticAthlete",
    "VIRTUAL_DEVICE_IDS",
    "WATCHES",
    "athlete_profile",
    "default_years",
    "encode_polyline",
    "generate_activities",
    "iso",
    "make_activity",
    "synthetic_athlete",
    "timezone_label",
    "utc_offset_seconds",
]
