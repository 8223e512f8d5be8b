"""Time zones (daylight saving time included) and routes (encoded polylines)."""

from __future__ import annotations

import math
import random
import time
from datetime import UTC, date, datetime, timedelta

from sync_assets_sandbox.athletes.tables import City

# -- time zones -------------------------------------------------------------------------------
_TRANSITIONS: dict[tuple[str, int, int], tuple[int, int]] = {}


def _sunday(year: int, month: int, nth: int) -> date:
    """The nth Sunday of a month (nth=-1: the last one)."""
    if nth > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (nth - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def _epoch_at(day: date, utc_hour: float) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + utc_hour * 3600)


def _dst_window(rule: str, year: int, std: int) -> tuple[int, int]:
    """(start, end) epochs of daylight time in `year` (for "au", end is in April, start in Oct)."""
    key = (rule, year, std)
    if key not in _TRANSITIONS:
        if rule == "eu":  # last Sunday of March to last Sunday of October, 01:00 UTC
            window = (_epoch_at(_sunday(year, 3, -1), 1), _epoch_at(_sunday(year, 10, -1), 1))
        elif rule == "us":  # second Sunday of March to first Sunday of November, 02:00 local
            window = (
                _epoch_at(_sunday(year, 3, 2), 2 - std),
                _epoch_at(_sunday(year, 11, 1), 2 - std - 1),
            )
        else:  # "au": first Sunday of October to first Sunday of April, 02:00 standard time
            window = (
                _epoch_at(_sunday(year, 10, 1), 2 - std),
                _epoch_at(_sunday(year, 4, 1), 2 - std),
            )
        _TRANSITIONS[key] = window
    return _TRANSITIONS[key]


def utc_offset_seconds(city: City, epoch: float) -> int:
    """The city's UTC offset at that instant, daylight saving time included."""
    offset = city.std_offset_hours * 3600
    if city.dst is None:
        return offset
    year = time.gmtime(epoch).tm_year
    start, end = _dst_window(city.dst, year, city.std_offset_hours)
    summer = (epoch >= start or epoch < end) if city.dst == "au" else start <= epoch < end
    return offset + 3600 if summer else offset


def timezone_label(city: City) -> str:
    """Strava's `timezone` string, which names the standard offset: "(GMT+01:00) Europe/Paris"."""
    sign = "+" if city.std_offset_hours >= 0 else "-"
    return f"(GMT{sign}{abs(city.std_offset_hours):02d}:00) {city.tz}"


# -- geometry ---------------------------------------------------------------------------------
def encode_polyline(points: list[tuple[float, float]]) -> str:
    """Google's encoded polyline algorithm (precision 5), as in Strava's `summary_polyline`."""
    out: list[int] = []
    prev_lat = prev_lng = 0
    for lat, lng in points:
        ilat, ilng = round(lat * 1e5), round(lng * 1e5)
        _encode_value(ilat - prev_lat, out)
        _encode_value(ilng - prev_lng, out)
        prev_lat, prev_lng = ilat, ilng
    return bytes(out).decode("ascii")


def _encode_value(delta: int, out: list[int]) -> None:
    value = ~(delta << 1) if delta < 0 else delta << 1
    while value >= 0x20:
        out.append((0x20 | (value & 0x1F)) + 63)
        value >>= 5
    out.append(value + 63)


def _route(
    rng: random.Random, lat: float, lng: float, distance: float, loop: bool
) -> list[tuple[float, float]]:
    """A coarse route of about `distance` meters: a loop back to the start, or point to point."""
    n = rng.randint(5, 9)
    step_lat = distance / n / 111_320
    step_lng = step_lat / max(0.2, math.cos(math.radians(lat)))
    bearing = rng.uniform(0, 2 * math.pi)
    turn = (2 * math.pi / n) if loop else 0.0
    points = [(lat, lng)]
    for _ in range(n - 1):
        bearing += turn + rng.uniform(-0.5, 0.5)
        lat += step_lat * math.cos(bearing)
        lng += step_lng * math.sin(bearing)
        points.append((lat, lng))
    if loop:
        points.append(points[0])
    return points
