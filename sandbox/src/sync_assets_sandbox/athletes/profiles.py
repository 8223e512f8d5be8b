"""A synthetic athlete (`SyntheticAthlete`, from a seed and an id) and its Strava profile."""

from __future__ import annotations

import random
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate
from typing import Any

from sync_assets_sandbox.athletes.tables import CITIES, FIRST_NAMES, LAST_NAMES, RUN, SPORTS, City


@dataclass(frozen=True)
class SyntheticAthlete:
    """The traits that keep one athlete's activities consistent with each other."""

    athlete_id: int
    seed: int
    homes: tuple[City, ...]
    home_cum_weights: tuple[float, ...]  # for rng.choices(cum_weights=...)
    language: str
    sport_cum_weights: tuple[float, ...]
    pace: float  # multiplies every speed
    hr_offset: float  # bpm added to every average heart rate
    hr_share: float  # share of activities recorded with a heart-rate strap or watch
    power_meter: bool
    shoes: tuple[str, ...]
    bikes: tuple[str, ...]
    firstname: str
    lastname: str
    sex: str
    premium: bool
    custom_name_share: float


def synthetic_athlete(seed: int, athlete_id: int) -> SyntheticAthlete:
    """The athlete behind (seed, athlete_id): homes, sports, fitness, gear, name."""
    rng = random.Random(f"strava-sandbox:{seed}:{athlete_id}:athlete")
    homes = tuple(rng.sample(CITIES, k=rng.choice((1, 1, 2, 2, 3))))
    weights = [
        s.weight * (1.0 if i == RUN else rng.lognormvariate(0, 0.6)) for i, s in enumerate(SPORTS)
    ]
    weights[RUN] = max(weights[RUN], 1.2 * max(weights[1:]))  # runs stay the most common
    language = homes[0].language
    gear_base = rng.randrange(1_000_000, 99_000_000)
    return SyntheticAthlete(
        athlete_id=athlete_id,
        seed=seed,
        homes=homes,
        home_cum_weights=tuple(accumulate((0.8, 0.15, 0.05)[: len(homes)])),
        language=language,
        sport_cum_weights=tuple(accumulate(weights)),
        pace=rng.uniform(0.85, 1.15),
        hr_offset=rng.uniform(-8, 8),
        hr_share=rng.choice((0.0, 0.5, 0.8, 0.95, 0.95)),
        power_meter=rng.random() < 0.4,
        shoes=tuple(f"g{gear_base + i}" for i in range(rng.randint(1, 3))),
        bikes=tuple(f"b{gear_base + 10 + i}" for i in range(rng.randint(1, 2))),
        firstname=rng.choice(FIRST_NAMES[language]),
        lastname=rng.choice(LAST_NAMES[language]),
        sex=rng.choice(("M", "F")),
        premium=rng.random() < 0.3,
        custom_name_share=rng.uniform(0.1, 0.5),
    )


def athlete_profile(
    athlete: SyntheticAthlete, *, created_at: datetime, updated_at: datetime
) -> dict[str, Any]:
    """Strava's SummaryAthlete (resource_state 2) for this athlete."""
    home = athlete.homes[0]
    slug = unicodedata.normalize("NFKD", f"{athlete.firstname}{athlete.lastname}")
    slug = "".join(c for c in slug if c.isascii() and c.isalnum()).lower()
    return {
        "id": athlete.athlete_id,
        "username": f"{slug}{athlete.athlete_id % 1000}" if slug else None,
        "resource_state": 2,
        "firstname": athlete.firstname,
        "lastname": athlete.lastname,
        "bio": None,
        "city": home.name,
        "state": home.state,
        "country": home.country,
        "sex": athlete.sex,
        "premium": athlete.premium,
        "summit": athlete.premium,
        "created_at": iso(created_at),
        "updated_at": iso(updated_at),
        "badge_type_id": 1 if athlete.premium else 0,
        "weight": None,
        "profile_medium": "avatar/athlete/medium.png",
        "profile": "avatar/athlete/large.png",
        "friend": None,
        "follower": None,
    }


def iso(dt: datetime) -> str:
    """Strava's timestamp format: whole seconds with a Z (also for local times)."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_epoch(epoch: int) -> str:
    t = time.gmtime(epoch)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
        f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}Z"
    )
