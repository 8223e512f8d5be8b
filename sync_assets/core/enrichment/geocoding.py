"""Place names for start points, offline: the `reverse_geocode` package ships GeoNames'
cities (population 1,000 and more, with state and country) and searches them with a k-d tree.

No network and no per-activity request; the data loads once per process (~0.3 s).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

MAX_DISTANCE_KM = 50.0  # farther from any town than this, a name would mislead

_lock = threading.Lock()


@dataclass(frozen=True)
class Place:
    city: str | None
    state: str | None
    country: str | None
    distance_km: float | None
    status: str  # "enriched" | "no_location" | "no_place"


NO_LOCATION = Place(None, None, None, None, "no_location")


def _haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0088 * 2 * math.asin(min(1.0, math.sqrt(a)))


def reverse_geocode(
    points: Sequence[tuple[float, float] | None], max_distance_km: float = MAX_DISTANCE_KM
) -> list[Place]:
    """The nearest town of each (lat, lng); `NO_LOCATION` where the point is None."""
    import reverse_geocode as rg  # heavy import (numpy, scipy): only when there is work

    known = [(i, p) for i, p in enumerate(points) if p is not None]
    places = [NO_LOCATION] * len(points)
    if not known:
        return places
    with _lock:  # the package builds its tree lazily, once; not thread-safe while doing so
        found = rg.search([p for _, p in known])
    for (i, (lat, lng)), hit in zip(known, found, strict=True):
        distance = _haversine_km(lat, lng, hit["latitude"], hit["longitude"])
        if distance > max_distance_km:
            places[i] = Place(None, None, None, round(distance, 1), "no_place")
        else:
            places[i] = Place(
                hit.get("city"),
                hit.get("state"),
                hit.get("country"),
                round(distance, 1),
                "enriched",
            )
    return places
