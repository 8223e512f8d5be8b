"""Deterministic synthetic athletes: plausible Strava SummaryActivity payloads from a seed.

Same seed, same athlete, byte for byte: the sandbox's ground truth is reproducible, so a test
or a demo can compare what was stored with what "Strava" holds. The data has what real data
has: a sport mix dominated by runs and rides, one to three home bases (cities on several
continents, with their time zones), manual and indoor activities without coordinates, private
activities, activities without heart rate, unicode names, and a few activities that share a
start second with another (duplicate uploads happen).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class City:
    name: str
    lat: float
    lng: float
    tz: str
    utc_offset_hours: float
    language: str


CITIES = (
    City("Paris", 48.8566, 2.3522, "Europe/Paris", 1, "fr"),
    City("Berlin", 52.52, 13.405, "Europe/Berlin", 1, "de"),
    City("München", 48.1351, 11.582, "Europe/Berlin", 1, "de"),
    City("London", 51.5074, -0.1278, "Europe/London", 0, "en"),
    City("Madrid", 40.4168, -3.7038, "Europe/Madrid", 1, "es"),
    City("Oslo", 59.9139, 10.7522, "Europe/Oslo", 1, "no"),
    City("Boulder", 40.015, -105.2705, "America/Denver", -7, "en"),
    City("São Paulo", -23.5505, -46.6333, "America/Sao_Paulo", -3, "pt"),
    City("Tokyo", 35.6762, 139.6503, "Asia/Tokyo", 9, "ja"),
    City("Sydney", -33.8688, 151.2093, "Australia/Sydney", 10, "en"),
    City("Cape Town", -33.9249, 18.4241, "Africa/Johannesburg", 2, "en"),
)

# (type, sport_type, weight, speed m/s range, duration min range, has GPS, heart rate share)
SPORTS = (
    ("Run", "Run", 40, (2.4, 4.2), (20, 110), True, 0.8),
    ("Run", "TrailRun", 6, (1.8, 3.2), (40, 240), True, 0.8),
    ("Ride", "Ride", 18, (5.5, 9.5), (40, 300), True, 0.7),
    ("Ride", "GravelRide", 4, (5.0, 8.0), (60, 300), True, 0.7),
    ("Ride", "MountainBikeRide", 3, (3.5, 6.0), (45, 200), True, 0.7),
    ("VirtualRide", "VirtualRide", 6, (6.0, 10.0), (30, 120), False, 0.9),
    ("Swim", "Swim", 6, (0.6, 1.2), (20, 75), False, 0.3),
    ("Walk", "Walk", 7, (1.1, 1.7), (20, 120), True, 0.4),
    ("Hike", "Hike", 4, (0.8, 1.5), (90, 420), True, 0.5),
    ("WeightTraining", "WeightTraining", 4, (0.0, 0.0), (30, 90), False, 0.6),
    ("Yoga", "Yoga", 2, (0.0, 0.0), (30, 75), False, 0.3),
)

NAMES = {
    "fr": (
        "Course du matin ☀️",
        "Sortie longue du dimanche",
        "Footing au bord de la Seine",
        "Vélo à travers la ville",
        "Randonnée dans les Alpes",
        "Fractionné 🔥",
    ),
    "de": (
        "Morgenlauf in München",
        "Abendrunde",
        "Radtour am Wochenende",
        "Lauf durch den Englischen Garten",
        "Wanderung über die Höhen",
    ),
    "en": (
        "Morning Run",
        "Lunch Ride",
        "Evening Walk",
        "Long run Sunday 🏃",
        "Tempo Tuesday",
        "Commute 🚲",
        "Parkrun PB!",
    ),
    "es": ("Carrera matutina", "Paseo en bici", "Rodaje suave por el Retiro"),
    "no": ("Morgenløp", "Tur i Nordmarka", "Sykkeltur langs fjorden"),
    "pt": ("Corrida da manhã", "Pedal no Ibirapuera", "Treino intervalado ☔"),
    "ja": ("朝ラン", "皇居ラン 🏯", "サイクリング", "夜のジョグ"),
}
INDOOR_NAMES = (
    "Zwift - Watopia",
    "Treadmill 🏃",
    "Indoor Cycling",
    "Gym session 💪",
    "Yoga flow",
    "Pool swim 🏊",
)

TIE_RATE = 0.005  # share of activities uploaded twice with the same start second


def _default_years(n: int) -> float:
    return max(1.0, min(15.0, n / 150))


def _offset_point(rng: random.Random, lat: float, lng: float, km: float) -> tuple[float, float]:
    bearing = rng.uniform(0, 2 * math.pi)
    dist = abs(rng.gauss(0, km))
    dlat = dist / 111.0 * math.cos(bearing)
    dlng = dist / (111.0 * max(0.2, math.cos(math.radians(lat)))) * math.sin(bearing)
    return round(lat + dlat, 6), round(lng + dlng, 6)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_activity(
    rng: random.Random, *, athlete_id: int, activity_id: int, start: datetime, home: City
) -> dict[str, Any]:
    """One plausible SummaryActivity starting at `start` (UTC) near `home`."""
    kinds = [s for s in SPORTS]
    legacy, sport, _, speed_rng, dur_rng, gps, hr_share = rng.choices(
        kinds, weights=[s[2] for s in kinds]
    )[0]
    indoor = not gps or rng.random() < 0.04  # treadmill runs, rollers
    manual = rng.random() < 0.03
    moving = int(rng.uniform(*dur_rng) * 60)
    elapsed = moving + int(abs(rng.gauss(0, 0.08)) * moving)
    speed = rng.uniform(*speed_rng)
    distance = round(speed * moving, 1)
    has_hr = not manual and rng.random() < hr_share
    private = rng.random() < 0.06
    local = start + timedelta(hours=home.utc_offset_hours)
    name = rng.choice(INDOOR_NAMES) if indoor or manual else rng.choice(NAMES[home.language])
    elev_gain = 0.0 if indoor else round(abs(rng.gauss(0, 8)) * distance / 1000, 1)
    sign = "+" if home.utc_offset_hours >= 0 else "-"
    hours = abs(home.utc_offset_hours)
    activity: dict[str, Any] = {
        "resource_state": 2,
        "athlete": {"id": athlete_id, "resource_state": 1},
        "name": name,
        "distance": distance,
        "moving_time": moving,
        "elapsed_time": elapsed,
        "total_elevation_gain": elev_gain,
        "type": legacy,
        "sport_type": sport,
        "workout_type": rng.choice([None, 0, 1, 2, 3]) if legacy == "Run" else None,
        "id": activity_id,
        "start_date": _iso(start),
        "start_date_local": _iso(local),
        "timezone": f"(GMT{sign}{int(hours):02d}:{int(hours % 1 * 60):02d}) {home.tz}",
        "utc_offset": float(home.utc_offset_hours * 3600),
        "location_city": None,
        "location_state": None,
        "location_country": None,
        "achievement_count": rng.randint(0, 6),
        "kudos_count": rng.randint(0, 40),
        "comment_count": rng.randint(0, 4),
        "athlete_count": rng.choice([1, 1, 1, 2, 3]),
        "photo_count": 0,
        "trainer": indoor and not manual,
        "commute": legacy == "Ride" and rng.random() < 0.1,
        "manual": manual,
        "private": private,
        "visibility": "only_me" if private else rng.choice(["everyone", "followers_only"]),
        "flagged": False,
        "gear_id": rng.choice([None, f"g{athlete_id % 9973}1", f"b{athlete_id % 9973}2"]),
        "average_speed": round(distance / moving, 3) if moving else 0.0,
        "max_speed": round(speed * rng.uniform(1.2, 1.9), 3),
        "has_heartrate": has_hr,
        "heartrate_opt_out": False,
        "display_hide_heartrate_option": has_hr,
        "upload_id": None if manual else activity_id * 7 + 13,
        "external_id": None if manual else f"garmin_push_{activity_id}",
        "from_accepted_tag": False,
        "pr_count": rng.randint(0, 3),
        "total_photo_count": rng.choice([0, 0, 0, 1, 2]),
        "has_kudoed": False,
    }
    if has_hr:
        avg = round(rng.uniform(115, 165), 1)
        activity["average_heartrate"] = avg
        activity["max_heartrate"] = float(round(avg + rng.uniform(10, 30)))
    if legacy in ("Run", "Walk", "Hike") and not manual:
        activity["average_cadence"] = round(rng.uniform(70, 92), 1)
    if legacy in ("Ride", "VirtualRide") and not manual and rng.random() < 0.6:
        watts = round(rng.uniform(120, 260), 1)
        activity.update(
            average_watts=watts, kilojoules=round(watts * moving / 1000, 1), device_watts=True
        )
    if indoor or manual:
        activity["start_latlng"], activity["end_latlng"] = [], []
        activity["map"] = {"id": f"a{activity_id}", "summary_polyline": "", "resource_state": 2}
    else:
        start_pt = _offset_point(rng, home.lat, home.lng, 4.0)
        end_pt = start_pt if rng.random() < 0.7 else _offset_point(rng, *start_pt, 3.0)
        activity["start_latlng"], activity["end_latlng"] = list(start_pt), list(end_pt)
        activity["map"] = {
            "id": f"a{activity_id}",
            "summary_polyline": "_p~iF~ps|U_ulLnnqC",
            "resource_state": 2,
        }
        base = max(0.0, rng.gauss(200, 150))
        activity["elev_low"], activity["elev_high"] = round(base, 1), round(base + elev_gain / 3, 1)
    return activity


def generate_activities(
    seed: int,
    athlete_id: int,
    n_activities: int,
    *,
    end: datetime,
    years: float | None = None,
    id_start: int = 1_000_000_000,
) -> list[dict[str, Any]]:
    """`n_activities` activities ending before `end`, sorted by (start_date, id).

    Ids start at `id_start` and increase with start time; the caller keeps them unique across
    athletes. No wall clock and no global random state are read: same inputs, same output.
    """
    rng = random.Random(seed * 1_000_003 + athlete_id)
    if n_activities <= 0:
        return []
    span = timedelta(days=365.25 * (years if years is not None else _default_years(n_activities)))
    end = end.astimezone(UTC).replace(microsecond=0)
    homes = rng.sample(CITIES, k=rng.randint(1, 3))
    home_weights = [0.75, 0.2, 0.05][: len(homes)]
    start_of_history = end - span
    seconds = int(span.total_seconds()) - 6 * 3600
    offsets = sorted(rng.randrange(0, max(seconds, 1)) for _ in range(n_activities))
    starts = []
    for i, off in enumerate(offsets):
        if i and rng.random() < TIE_RATE:
            starts.append(starts[-1])  # a duplicate upload: same second as the previous one
        else:
            starts.append(start_of_history + timedelta(seconds=off))
    activities = []
    for i, start in enumerate(starts):
        home = rng.choices(homes, weights=home_weights)[0]
        activities.append(
            make_activity(
                rng, athlete_id=athlete_id, activity_id=id_start + i, start=start, home=home
            )
        )
    activities.sort(key=lambda a: (a["start_date"], a["id"]))
    return activities
