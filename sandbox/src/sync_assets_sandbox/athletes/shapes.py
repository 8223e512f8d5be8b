"""The shapes Strava's schema allows and clients often refuse (`_apply_shapes`)."""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any

from sync_assets_sandbox.athletes.profiles import SyntheticAthlete
from sync_assets_sandbox.athletes.tables import _rows

# -- shapes the official schema allows --------------------------------------------------------
# Sports without a distance: Strava may leave `distance` out of their payloads.
NO_DISTANCE_SPORTS = frozenset({"Yoga", "WeightTraining", "Workout", "Pilates", "Crossfit"})
MISSING_DISTANCE_SHARE = 0.3  # of the activities of those sports
MOVING_ABOVE_ELAPSED_SHARE = 0.005  # device uploads whose moving time exceeds elapsed time
INTEGER_NUMBERS_SHARE = 0.05  # payloads with whole floats written as JSON integers
DEVICE_NAME_SHARE = 0.9  # device uploads naming their device (older uploads do not)
HIDE_FROM_HOME_SHARE = 0.03  # activities muted from the home feed
RARE_SPORT_SHARE = 0.25  # of gym activities (yoga, strength, workouts): rarer sport types
# Official SportType | legacy ActivityType | names athletes give them.
_RARE_SPORT_TABLE = """
Badminton                     | Workout      | Badminton 🏸 / Badminton club
Pickleball                    | Workout      | Pickleball / Pickleball doubles
Padel                         | Workout      | Padel con amigos / Padel 🎾
Tennis                        | Workout      | Tennis / Tennis en salle
Squash                        | Workout      | Squash / Squash ladder
TableTennis                   | Workout      | Ping-pong 🏓 / Tischtennis
HighIntensityIntervalTraining | Workout      | HIIT 🔥 / Tabata 20/10
Pilates                       | Workout      | Pilates / Reformer Pilates
Crossfit                      | Crossfit     | CrossFit WOD / Murph
Elliptical                    | Elliptical   | Elliptical / Crosstrainer
Rowing                        | Rowing       | Indoor rowing / Rameur 2 km
StairStepper                  | StairStepper | Stair climber / StairMaster
RockClimbing                  | RockClimbing | Bouldering 🧗 / Kletterhalle
Dance                         | Workout      | Dance class 💃 / Zumba
"""
RARE_SPORTS: tuple[tuple[str, str, tuple[str, ...]], ...] = tuple(
    (sport_type, legacy, tuple(n.strip() for n in names.split(" / ")))
    for sport_type, legacy, names in _rows(_RARE_SPORT_TABLE)
)
# Fields typed `number` (float) whose whole values Strava writes as integers: 11, 0, 178.
FLOAT_FIELDS = (
    "distance", "total_elevation_gain", "average_speed", "max_speed", "average_heartrate",
    "max_heartrate", "average_cadence", "average_watts", "kilojoules", "utc_offset",
    "elev_low", "elev_high",
)  # fmt: skip
WATCHES = ("Garmin Forerunner 255", "Garmin fēnix 7", "COROS PACE 2", "Apple Watch Series 8")
BIKE_COMPUTERS = ("Garmin Edge 1030", "Garmin Edge 530", "Wahoo ELEMNT BOLT")


def _shapes_seed(athlete: SyntheticAthlete, activity_id: int | None = None) -> str:
    base = f"strava-sandbox:{athlete.seed}:{athlete.athlete_id}"
    return f"{base}:shapes" if activity_id is None else f"{base}:{activity_id}:shapes"


@lru_cache(maxsize=4096)
def _devices(seed: int, athlete_id: int) -> tuple[str, str]:
    """The athlete's watch and bike computer (the same ones for years, as athletes do)."""
    rng = random.Random(f"strava-sandbox:{seed}:{athlete_id}:devices")
    return rng.choice(WATCHES), rng.choice(BIKE_COMPUTERS)


def _device_name(athlete: SyntheticAthlete, activity: dict[str, Any]) -> str:
    external_id = activity["external_id"]
    if external_id.startswith("zwift"):
        return "Zwift"
    if external_id.endswith(".gpx"):
        return "Strava App"
    watch, bike_computer = _devices(athlete.seed, athlete.athlete_id)
    return bike_computer if activity["type"] in ("Ride", "VirtualRide") else watch


def _apply_shapes(
    activity: dict[str, Any], athlete: SyntheticAthlete, shapes: random.Random
) -> None:
    """Shapes Strava's schema allows, drawn from `shapes` (not the history's stream)."""
    rand = shapes.random
    gym = activity["sport_type"] in ("Yoga", "WeightTraining", "Workout")
    if gym and rand() < RARE_SPORT_SHARE:
        sport_type, legacy, names = RARE_SPORTS[shapes.randrange(len(RARE_SPORTS))]
        activity.update(sport_type=sport_type, type=legacy, name=shapes.choice(names))
    if (
        activity["sport_type"] in NO_DISTANCE_SPORTS
        and not activity.get("distance")
        and rand() < MISSING_DISTANCE_SHARE
    ):
        del activity["distance"]
    moving = activity["moving_time"]
    if not activity["manual"] and moving >= 60 and rand() < MOVING_ABOVE_ELAPSED_SHARE:
        activity["elapsed_time"] = moving - shapes.randint(1, moving // 10)
    if rand() < INTEGER_NUMBERS_SHARE:
        for name in FLOAT_FIELDS:
            value = activity.get(name)
            if isinstance(value, float) and value.is_integer():
                activity[name] = int(value)
    if activity["external_id"] is not None and rand() < DEVICE_NAME_SHARE:
        activity["device_name"] = _device_name(athlete, activity)
    activity["hide_from_home"] = rand() < HIDE_FROM_HOME_SHARE
