"""Synthetic activities: one (`make_activity`) or a whole history (`generate_activities`)."""

from __future__ import annotations

import math
import random
from bisect import bisect
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any, TypeVar

from sync_assets_sandbox.athletes.geo import (
    _route,
    encode_polyline,
    timezone_label,
    utc_offset_seconds,
)
from sync_assets_sandbox.athletes.profiles import SyntheticAthlete, _iso_epoch, synthetic_athlete
from sync_assets_sandbox.athletes.shapes import _apply_shapes, _shapes_seed
from sync_assets_sandbox.athletes.tables import (
    CUSTOM_NAMES,
    FAMILY,
    PARTS_OF_DAY,
    SPORT_WORDS,
    SPORTS,
    START_HOURS,
    City,
    Sport,
)

T = TypeVar("T")

DEFAULT_ID_START = 10_000_000_000  # real Strava ids are past 2**32: clients must use int64
DUPLICATE_UPLOAD_RATE = 0.0025  # each duplicate pairs two activities: ~0.5% share a second


# -- activities -------------------------------------------------------------------------------
def _part_of_day(local_hour: int) -> int:
    if local_hour < 5 or local_hour >= 21:
        return 0
    if local_hour < 11:
        return 1
    if local_hour < 14:
        return 2
    return 3 if local_hour < 17 else 4


def _name(athlete: SyntheticAthlete, rng: random.Random, sport: Sport, local_hour: int) -> str:
    if rng.random() < athlete.custom_name_share:
        return rng.choice(CUSTOM_NAMES[FAMILY[sport.type]])
    lang = athlete.language
    part, word = PARTS_OF_DAY[lang][_part_of_day(local_hour)], SPORT_WORDS[lang][sport.sport_type]
    if lang == "en":
        return f"{part} {word}"
    if lang == "ja":
        return f"{part}の{word}"
    return f"{word} {part}"


def _cum(*weights: float) -> tuple[float, ...]:
    return tuple(accumulate(weights))


def _pick(rng: random.Random, population: Sequence[T], cum_weights: Sequence[float]) -> T:
    """`rng.choices(population, cum_weights=...)[0]`, without its per-call overhead."""
    return population[bisect(cum_weights, rng.random() * cum_weights[-1])]


def make_activity(
    athlete: SyntheticAthlete,
    rng: random.Random,
    *,
    activity_id: int,
    start: datetime | int,
    home: City | None = None,
    sport: Sport | None = None,
) -> dict[str, Any]:
    """One plausible SummaryActivity of this athlete starting at `start` (UTC)."""
    home = home or _pick(rng, athlete.homes, athlete.home_cum_weights)
    sport = sport or _pick(rng, SPORTS, athlete.sport_cum_weights)
    activity = _activity(athlete, rng, _to_epoch(start), home, sport)
    _assign_id(activity, activity_id)
    _apply_shapes(activity, athlete, random.Random(_shapes_seed(athlete, activity_id)))
    return activity


def _to_epoch(start: datetime | int) -> int:
    if isinstance(start, datetime):
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        return int(start.timestamp())
    return int(start)


RUN_WORKOUTS, RUN_WORKOUT_CUM = (None, 0, 1, 2, 3), _cum(10, 70, 3, 9, 8)
RIDE_WORKOUTS, RIDE_WORKOUT_CUM = (None, 10, 11, 12), _cum(10, 80, 3, 7)
GROUP_SIZES, GROUP_SIZE_CUM = (1, 2, 3, 6), _cum(85, 8, 4, 3)
PHOTOS, PHOTO_CUM = (0, 1, 2, 4), _cum(80, 10, 6, 4)
DEVICE_IDS = ("garmin_ping_{n}", "garmin_push_{n}", "{n}.fit", "{n}.gpx")
VIRTUAL_DEVICE_IDS = ("zwift-activity-{n}.fit", "{n}.fit", "garmin_ping_{n}")


def _activity(
    athlete: SyntheticAthlete,
    rng: random.Random,
    start: int,
    home: City,
    sport: Sport,
    duration_hint: int | None = None,
) -> dict[str, Any]:
    """The activity without its id (ids are given once the history is sorted)."""
    rand, uniform = rng.random, rng.uniform
    offset = utc_offset_seconds(home, start)
    local_hour = (start + offset) // 3600 % 24
    weekday = ((start + offset) // 86_400 + 3) % 7  # 1970-01-01 was a Thursday
    manual = rand() < 0.03
    indoor = not manual and sport.indoor_share > 0 and rand() < sport.indoor_share
    open_water = sport.sport_type == "Swim" and not manual and rand() < 0.15
    gps = not manual and not indoor and (sport.gps or open_water)
    moving = duration_hint or int(uniform(*sport.minutes) * 60)
    if manual:
        moving = max(600, round(moving / 300) * 300)  # typed in: round numbers
    elapsed = moving if manual else moving + int(moving * sport.pause * uniform(0.2, 1.8))
    speed = uniform(*sport.speed) * athlete.pace * uniform(0.93, 1.07)
    distance = speed * moving
    if sport.sport_type == "Swim" and not open_water:
        distance = round(distance / 25) * 25.0  # pool lengths
    if manual and distance:
        distance = float(max(1000, round(distance / 500) * 500))
    distance = round(distance, 1)
    if gps or sport.sport_type == "VirtualRide":
        climb = sport.climb * (home.hills if gps else 8.0)
        gain = round(distance / 1000 * climb * rng.lognormvariate(0, 0.5), 1)
    else:
        gain = 0.0
    has_hr = not manual and rand() < athlete.hr_share
    private = rand() < 0.06
    workout_type: int | None = None
    if sport.type == "Run":
        workout_type = _pick(rng, RUN_WORKOUTS, RUN_WORKOUT_CUM)
    elif sport.type == "Ride":
        workout_type = _pick(rng, RIDE_WORKOUTS, RIDE_WORKOUT_CUM)
    gear_id: str | None = None
    if not manual and sport.gear == "shoes" and rand() < 0.85:
        gear_id = rng.choice(athlete.shoes)
    elif not manual and sport.gear == "bike" and rand() < 0.9:
        gear_id = rng.choice(athlete.bikes)
    kudos = 0 if private else int(rng.lognormvariate(1.5, 0.9))
    achievements = rng.randint(0, 8) if gps and FAMILY[sport.type] != "swim" else 0
    activity: dict[str, Any] = {
        "resource_state": 2,
        "athlete": {"id": athlete.athlete_id, "resource_state": 1},
        "name": _name(athlete, rng, sport, local_hour),
        "distance": distance,
        "moving_time": moving,
        "elapsed_time": elapsed,
        "total_elevation_gain": gain,
        "type": sport.type,
        "sport_type": sport.sport_type,
        "workout_type": workout_type,
        "id": 0,
        "start_date": _iso_epoch(start),
        "start_date_local": _iso_epoch(start + offset),
        "timezone": timezone_label(home),
        "utc_offset": float(offset),
        "location_city": None,
        "location_state": None,
        "location_country": None,
        "achievement_count": achievements,
        "kudos_count": kudos,
        "comment_count": 0 if private else min(kudos, int(rng.lognormvariate(-0.5, 1.0))),
        "athlete_count": _pick(rng, GROUP_SIZES, GROUP_SIZE_CUM) if gps else 1,
        "photo_count": 0,
        "map": {"id": "", "summary_polyline": None, "resource_state": 2},
        "trainer": indoor,
        "commute": gps
        and sport.type in ("Ride", "Run", "Walk")
        and weekday < 5
        and rand() < (0.15 if sport.type == "Ride" else 0.04),
        "manual": manual,
        "private": private,
        "visibility": "only_me" if private else "followers_only" if rand() < 0.2 else "everyone",
        "flagged": False,
        "gear_id": gear_id,
        "start_latlng": None,  # Strava's examples: null without coordinates
        "end_latlng": None,
        "average_speed": round(distance / moving, 3) if moving else 0.0,
        "max_speed": 0.0 if manual or not distance else round(speed * uniform(1.2, 1.8), 3),
        "has_heartrate": has_hr,
        "heartrate_opt_out": False,
        "display_hide_heartrate_option": has_hr,
        "upload_id": None,
        "upload_id_str": None,
        "external_id": None,
        "from_accepted_tag": False,
        "pr_count": rng.randint(0, achievements) if achievements else 0,
        "total_photo_count": 0 if manual else _pick(rng, PHOTOS, PHOTO_CUM),
        "has_kudoed": False,
    }
    if has_hr:
        avg = uniform(*sport.hr) + athlete.hr_offset
        activity["average_heartrate"] = round(avg, 1)
        activity["max_heartrate"] = float(round(min(205.0, avg + uniform(10, 35))))
    if not manual and sport.type in ("Run", "Walk", "Hike") and rand() < 0.9:
        cadence = uniform(76, 92) if sport.type == "Run" else uniform(50, 60)
        activity["average_cadence"] = round(cadence, 1)
    if not manual and sport.type in ("Ride", "VirtualRide"):
        if sport.sport_type == "VirtualRide" or athlete.power_meter:
            watts = uniform(140, 280) * athlete.pace
            activity["average_cadence"] = round(uniform(75, 95), 1)
            activity["average_watts"] = round(watts, 1)
            activity["max_watts"] = int(watts * uniform(2.0, 4.0))
            activity["weighted_average_watts"] = int(watts * uniform(1.02, 1.12))
            activity["kilojoules"] = round(watts * moving / 1000, 1)
            activity["device_watts"] = True
        elif rand() < 0.6:  # Strava's estimate from speed and climbing
            watts = uniform(100, 200)
            activity["average_watts"] = round(watts, 1)
            activity["kilojoules"] = round(watts * moving / 1000, 1)
            activity["device_watts"] = False
    if gps:
        radius = abs(rng.gauss(0, 3000)) / 111_320
        bearing = uniform(0, 2 * math.pi)
        lat = home.lat + radius * math.cos(bearing)
        lng = home.lng + radius * math.sin(bearing) / math.cos(math.radians(home.lat))
        route = _route(rng, lat, lng, distance, loop=rand() < 0.7)
        activity["start_latlng"] = [round(route[0][0], 2), round(route[0][1], 2)]
        activity["end_latlng"] = [round(route[-1][0], 2), round(route[-1][1], 2)]
        activity["map"]["summary_polyline"] = encode_polyline(route)
        low = round(max(-5.0, home.altitude + rng.gauss(0, 15)), 1)
        activity["elev_low"] = low
        activity["elev_high"] = round(low + gain * uniform(0.15, 0.5), 1)
    if not manual:
        devices = VIRTUAL_DEVICE_IDS if sport.sport_type == "VirtualRide" else DEVICE_IDS
        activity["external_id"] = rng.choice(devices)
    return activity


def _restart(activity: dict[str, Any], home: City, start: int) -> None:
    """Move an activity's start, keeping its local time and offset consistent."""
    offset = utc_offset_seconds(home, start)
    activity["start_date"] = _iso_epoch(start)
    activity["start_date_local"] = _iso_epoch(start + offset)
    activity["utc_offset"] = float(offset)


def _assign_id(activity: dict[str, Any], activity_id: int) -> None:
    activity["id"] = activity_id
    activity["map"]["id"] = f"a{activity_id}"
    if activity["external_id"] is not None:  # uploaded from a device, not typed in
        upload_id = activity_id + 1_234_567_890
        activity["upload_id"] = upload_id
        activity["upload_id_str"] = str(upload_id)
        activity["external_id"] = activity["external_id"].format(n=upload_id * 7 % 10**10)


def default_years(n_activities: int) -> float:
    """History length that grows with the number of activities: 150 a year, 1 to 15 years."""
    return max(1.0, min(15.0, n_activities / 150))


START_HOUR_CUM = _cum(*(w for w, _, _ in START_HOURS))


def generate_activities(
    seed: int,
    athlete_id: int,
    n_activities: int,
    *,
    end: datetime,
    years: float | None = None,
    id_start: int = DEFAULT_ID_START,
) -> list[dict[str, Any]]:
    """`n_activities` activities that all ended before `end`, sorted by (start_date, id).

    Ids start at `id_start` and increase with start time (with small gaps, as Strava's shared id
    sequence has); the caller keeps ranges of different athletes apart.
    """
    if n_activities <= 0:
        return []
    athlete = synthetic_athlete(seed, athlete_id)
    rng = random.Random(f"strava-sandbox:{seed}:{athlete_id}:activities")
    end_epoch = _to_epoch(end)
    span = int(365.25 * 86_400 * (years if years is not None else default_years(n_activities)))
    first_day = (end_epoch - span) // 86_400
    days = max(1, span // 86_400)
    plan: list[tuple[int, City, Sport]] = []
    while len(plan) < n_activities:
        day = first_day + rng.randrange(days + 1)
        if (day + 3) % 7 < 5 and rng.random() < 0.3:
            continue  # fewer activities on weekdays than at weekends
        home = _pick(rng, athlete.homes, athlete.home_cum_weights)
        sport = _pick(rng, SPORTS, athlete.sport_cum_weights)
        _, lo, hi = _pick(rng, START_HOURS, START_HOUR_CUM)
        local = day * 86_400 + int(rng.uniform(lo, hi) * 3600)
        plan.append((local - utc_offset_seconds(home, local), home, sport))
    plan.sort(key=lambda p: p[0])
    drafts: list[dict[str, Any]] = []
    previous: tuple[int, City, Sport, int] | None = None  # start, home, sport, moving time
    for start, home, sport in plan:
        if previous is not None and rng.random() < DUPLICATE_UPLOAD_RATE:
            # A second upload of the same session (another device): the same start second.
            p_start, p_home, p_sport, p_moving = previous
            drafts.append(_activity(athlete, rng, p_start, p_home, p_sport, p_moving))
            continue
        draft = _activity(athlete, rng, start, home, sport)
        latest = end_epoch - draft["elapsed_time"] - 60
        if start > latest:  # it would still be going on at `end`: start it earlier
            start = latest
            _restart(draft, home, start)
        drafts.append(draft)
        previous = (start, home, sport, draft["moving_time"])
    drafts.sort(key=lambda a: a["start_date"])  # stable: ties keep their upload order
    next_id = id_start
    for draft in drafts:
        _assign_id(draft, next_id)
        next_id += 1 if rng.random() < 0.7 else 1 + rng.randrange(4)
    shapes = random.Random(_shapes_seed(athlete))  # a stream of its own: `rng` is untouched
    for draft in drafts:
        _apply_shapes(draft, athlete, shapes)
    return drafts
