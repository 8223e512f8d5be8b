"""Deterministic weather: a pure function of (seed, grid cell, UTC hour) built from hashed,
smoothly interpolated noise (the archive's data model).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from sync_assets_sandbox.weather.common import DAY, HOUR


def grid(value: float) -> float:
    """A coordinate snapped to ERA5-Land's 0.1 degree grid."""
    return round(value * 10) / 10


def _grid_index(value: float) -> int:
    return int(round(value * 10))


def _hash_unit(seed: int, tag: str, a: int, b: int, k: int) -> float:
    """A stable number in [0, 1) for (seed, tag, cell, knot): hashlib, the same everywhere."""
    digest = hashlib.blake2b(f"{seed}:{tag}:{a}:{b}:{k}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class _Cell:
    """One grid cell's noise, with the knots it has drawn cached (one per request)."""

    def __init__(self, seed: int, lat: float, lng: float) -> None:
        self.seed = seed
        self.lat_i = _grid_index(lat)
        self.lng_i = _grid_index(lng)
        self.lat = self.lat_i / 10
        self.lng = self.lng_i / 10
        self._knots: dict[tuple[str, int], float] = {}
        self.elevation = float(round(1500 * self.unit("elevation", 0) ** 2))

    def unit(self, tag: str, k: int) -> float:
        return _hash_unit(self.seed, tag, self.lat_i, self.lng_i, k)

    def knot(self, tag: str, k: int) -> float:
        key = (tag, k)
        value = self._knots.get(key)
        if value is None:
            value = self._knots[key] = 2 * self.unit(tag, k) - 1
        return value

    def noise(self, tag: str, x: float) -> float:
        """Smooth noise in [-1, 1]: knots at integers, smoothstep between them."""
        k = math.floor(x)
        f = x - k
        s = f * f * (3 - 2 * f)
        return self.knot(tag, k) * (1 - s) + self.knot(tag, k + 1) * s


def _clamp(value: float, lo: float, hi: float) -> float:
    return lo if value < lo else hi if value > hi else value


def _magnus_dew_point(t: float, rh: float) -> float:
    a, b = 17.625, 243.04
    gamma = math.log(max(rh, 1.0) / 100) + a * t / (b + t)
    return b * gamma / (a - gamma)


def _weather_code(t: float, precip: float, rh: int, cloud: int) -> int:
    if precip > 0:
        if t < 1:
            return 71 if precip < 1 else 73 if precip < 3 else 75
        if precip >= 3 and t > 18:
            return 95
        if precip < 0.5:
            return 51 if precip < 0.2 else 53 if precip < 0.35 else 55
        if t > 20 and cloud < 95:
            return 80 if precip < 1.5 else 81 if precip < 3 else 82
        return 61 if precip < 1.5 else 63 if precip < 3 else 65
    if rh > 95:
        return 48 if t < 0 else 45
    return 0 if cloud < 20 else 1 if cloud < 50 else 2 if cloud < 80 else 3


def _weather(cell: _Cell, hour: int) -> dict[str, Any]:
    """Metric weather (°C, %, hPa, mm, cm, m/s) of one UTC hour (epoch // 3600) in a cell."""
    lat, lng = cell.lat, cell.lng
    days = (hour * HOUR - 946_684_800) / DAY  # since 2000-01-01
    doy = days % 365.2425
    hemisphere = 1.0 if lat >= 0 else -1.0
    season = hemisphere * math.cos(2 * math.pi * (doy - 196) / 365.2425)
    solar_hour = (hour % 24 + lng / 15) % 24

    wet = 0.6 * cell.noise("wet", hour / 6) + 0.4 * cell.noise("wet-day", hour / 24)
    precip = round(max(0.0, wet - 0.35) * 9, 1)
    cloud = int(round(_clamp(50 + 55 * (0.5 * cell.noise("cloud", hour / 12) + 0.6 * wet), 0, 100)))
    if precip > 0:
        cloud = max(cloud, 88)
    diurnal = 6 * (1 - 0.6 * cloud / 100) * math.cos(2 * math.pi * (solar_hour - 15) / 24)
    abs_lat = abs(lat)
    t = (
        27
        - 0.4 * abs_lat
        + 0.3 * abs_lat * season
        - 0.0065 * cell.elevation
        + 5 * cell.noise("temp", hour / 24)
        + 2 * cell.noise("temp-slow", hour / 96)
        + diurnal
        - (1.5 if precip > 0 else 0.0)
    )
    t = round(t, 1)
    rh = 70 + 18 * cell.noise("humidity", hour / 12) + 0.15 * (cloud - 50) - 2.5 * diurnal
    rh = int(round(_clamp(rh + (12 if precip > 0 else 0), 5, 100)))
    msl = round(
        1013 + 11 * cell.noise("pressure", hour / 48) + 4 * cell.noise("pressure-12", hour / 12), 1
    )
    surface = round(msl * (1 - 2.25577e-5 * cell.elevation) ** 5.25588, 1)
    wind = 4 + 3.5 * cell.noise("wind", hour / 6) + 2 * cell.noise("wind-day", hour / 24)
    wind = round(_clamp(wind + 0.25 * diurnal + 2 * max(0.0, wet), 0.2, 15), 1)
    gust = round(wind * (1.35 + 0.25 * cell.unit("gust", hour)) + 0.5, 1)
    direction = int(
        round(180 + 180 * cell.noise("direction", hour / 24) + 40 * cell.noise("dir-6", hour / 6))
    )
    direction %= 360
    snow = precip > 0 and t < 1
    # Day or night from the sun's hour angle at this instant (declination by season).
    declination = math.radians(-23.44 * math.cos(2 * math.pi * (doy + 10) / 365.2425))
    phi = math.radians(lat)
    hour_angle = math.radians(15 * (solar_hour - 12))
    cos_zenith = math.sin(phi) * math.sin(declination) + math.cos(phi) * math.cos(
        declination
    ) * math.cos(hour_angle)
    is_day = 1 if cos_zenith > 0 else 0
    code = _weather_code(t, precip, rh, cloud)
    vapour = rh / 100 * 6.105 * math.exp(17.27 * t / (237.7 + t))
    apparent = round(t + 0.33 * vapour - 0.70 * wind - 4.00, 1)
    if code in (45, 48):
        visibility = 200 + int(700 * cell.unit("fog", hour))
    else:
        visibility = int(_clamp(10_000 - 1_800 * precip, 800, 10_000))
    uvi = 0.0
    if is_day:
        uvi = round(_clamp(12.5 * cos_zenith**2 * (1 - 0.7 * cloud / 100), 0, 11), 2)
    return {
        "temperature_2m": t,
        "relative_humidity_2m": rh,
        "dew_point_2m": round(_magnus_dew_point(t, rh), 1),
        "apparent_temperature": apparent,
        "pressure_msl": msl,
        "surface_pressure": surface,
        "precipitation": precip,
        "rain": 0.0 if snow else precip,
        "snowfall": round(precip * 0.7, 2) if snow else 0.0,
        "cloud_cover": cloud,
        "wind_speed_10m": wind,
        "wind_direction_10m": direction,
        "wind_gusts_10m": gust,
        "weather_code": code,
        "is_day": is_day,
        "visibility": visibility,
        "uvi": uvi,
    }


def _fahrenheit(celsius: float) -> float:
    return round(celsius * 1.8 + 32, 1)
