"""An offline stand-in for Open-Meteo's historical weather API and OpenWeatherMap's timemachine.

Like the Strava sandbox, it is a product feature (offline demos, users' own tests, fault
injection): a client cannot tell it from the real services, only base URLs differ. What it
copies comes from Open-Meteo's documentation (open-meteo.com/en/docs/historical-weather-api)
and source (github.com/open-meteo/open-meteo), and from OpenWeatherMap's One Call 3.0 docs:

* Open-Meteo `GET /v1/archive` (and `POST` with a form body): `latitude` and `longitude` are
  comma lists of equal length; one location answers a JSON object, several a JSON list in
  request order. `start_date` and `end_date` (YYYY-MM-DD) are required; each is one date for
  every location or a comma list with one range per coordinate; a single coordinate with N
  ranges answers N objects. `hourly` (comma list), `timezone` (GMT default, any IANA name,
  `auto` is served as GMT), `wind_speed_unit` (kmh, ms, mph, kn), `temperature_unit`
  (celsius, fahrenheit), `timeformat` (iso8601 "YYYY-MM-DDTHH:MM" local time, or unixtime).
  Each object has `latitude`/`longitude` snapped to ERA5-Land's 0.1 degree grid,
  `generationtime_ms`, `utc_offset_seconds`, `timezone`, `timezone_abbreviation`,
  `elevation`, `hourly_units` and `hourly` with 24 values per day, start_date 00:00 to
  end_date 23:00 local. Values are rounded as Open-Meteo rounds them.
* Open-Meteo errors: HTTP 400 `{"error": true, "reason": ...}` with its texts (dates out of
  1940-01-01..today, date lists not matching the coordinates, missing dates, end before start,
  more than 1000 locations, latitude/longitude out of range or of different lengths).
* ERA5 publication lag: hours later than now - `lag_days` (5) are `null` in every variable,
  the time array staying complete.
* Open-Meteo's free-tier limits: 600 / minute, 5,000 / hour, 10,000 / day, windows resetting
  on the clock (minute, hour, midnight UTC). A request is refused (429, "Minutely API request
  limit exceeded. ...") once a window's usage is >= its limit; a served request costs its
  weight: per location (and range), max(1, vf, vf * days / 14) with vf = hourly variables / 10
  (`request_weight`). Refused and invalid requests cost nothing.
* OpenWeatherMap One Call 3.0 `GET /data/3.0/onecall/timemachine?lat&lon&dt&appid&units`:
  one hour of data (`data[0]`: dt, temp, feels_like, pressure, humidity, dew_point, uvi,
  clouds, visibility, wind_speed, wind_deg, wind_gust, weather[{id, main, description,
  icon}], rain/snow {"1h"} when falling), units standard (Kelvin), metric, imperial (°F, mph).
  A missing or wrong `appid` is a 401, a bad coordinate a 400 ("wrong latitude"), too many
  calls a 429, all with OpenWeatherMap's bodies.

The weather is made up but plausible and deterministic: a pure function of (seed, grid cell,
UTC hour) built from hashed, smoothly interpolated noise (season by latitude and hemisphere,
a diurnal cycle on local solar time, humidity, Magnus dew point, pressure, wind, clouds,
precipitation, WMO weather codes consistent with them, BoM apparent temperature). An hour has
the same values whatever range it is requested in, in any process.

Beyond the real services, `WeatherSandbox` keeps a request log, usage counters, ground truth
(`weather_at`) and fault injection (`WeatherFaults`: latency, 5xx, dropped connections,
truncated bodies, forced 429s, outages, malformed JSON), all mirrored over HTTP under
`/_weather/`, so it can share one HTTP server (and one clock) with the Strava sandbox.
Gateway faults (outage, drop, 502/503 HTML) happen in front of the API and cost nothing.
"""

from __future__ import annotations

import calendar
import copy
import hashlib
import json
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sync_assets_sandbox.strava import (
    JSON_TYPE,
    MAX_LOGGED_REQUESTS,
    Response,
    SandboxError,
    _dumps,
    _gateway_page,
    _parse_query,
    common_control,
)

MINUTE = 60
HOUR = 3_600
DAY = 86_400
ARCHIVE_PATH = "/v1/archive"
OWM_PATH = "/data/3.0/onecall/timemachine"
FIRST_DATE = date(1940, 1, 1)
DEFAULT_OWM_KEY = "sandbox-owm-key"

VARIABLES = (
    "temperature_2m",
    "relative_humidity_2m",
    "dew_point_2m",
    "apparent_temperature",
    "pressure_msl",
    "surface_pressure",
    "precipitation",
    "rain",
    "snowfall",
    "cloud_cover",
    "wind_speed_10m",
    "wind_direction_10m",
    "wind_gusts_10m",
    "weather_code",
    "is_day",
)
_TEMPERATURES = frozenset({"temperature_2m", "dew_point_2m", "apparent_temperature"})
_WINDS = frozenset({"wind_speed_10m", "wind_gusts_10m"})
_FIXED_UNITS = {
    "relative_humidity_2m": "%",
    "pressure_msl": "hPa",
    "surface_pressure": "hPa",
    "precipitation": "mm",
    "rain": "mm",
    "snowfall": "cm",
    "cloud_cover": "%",
    "wind_direction_10m": "°",
    "weather_code": "wmo code",
    "is_day": "",
}
# unit parameter -> (factor from m/s, unit string as Open-Meteo writes it)
WIND_UNITS = {
    "kmh": (3.6, "km/h"),
    "ms": (1.0, "m/s"),
    "mph": (2.23694, "mp/h"),
    "kn": (1.94384, "kn"),
}
TEMPERATURE_UNITS = {"celsius": "°C", "fahrenheit": "°F"}
WMO_CODES = (0, 1, 2, 3, 45, 48, 51, 53, 55, 61, 63, 65, 71, 73, 75, 80, 81, 82, 95)
SNOW_CODES = frozenset({71, 73, 75})
PRECIPITATION_CODES = frozenset({51, 53, 55, 61, 63, 65, 71, 73, 75, 80, 81, 82, 95})

# WMO code -> OpenWeatherMap condition (id, main, description, icon without d/n)
_OWM_CONDITIONS = {
    0: (800, "Clear", "clear sky", "01"),
    1: (801, "Clouds", "few clouds", "02"),
    2: (802, "Clouds", "scattered clouds", "03"),
    3: (804, "Clouds", "overcast clouds", "04"),
    45: (741, "Fog", "fog", "50"),
    48: (741, "Fog", "fog", "50"),
    51: (300, "Drizzle", "light intensity drizzle", "09"),
    53: (301, "Drizzle", "drizzle", "09"),
    55: (302, "Drizzle", "heavy intensity drizzle", "09"),
    61: (500, "Rain", "light rain", "10"),
    63: (501, "Rain", "moderate rain", "10"),
    65: (502, "Rain", "heavy intensity rain", "10"),
    71: (600, "Snow", "light snow", "13"),
    73: (601, "Snow", "snow", "13"),
    75: (602, "Snow", "heavy snow", "13"),
    80: (520, "Rain", "light intensity shower rain", "09"),
    81: (521, "Rain", "shower rain", "09"),
    82: (522, "Rain", "heavy intensity shower rain", "09"),
    95: (211, "Thunderstorm", "thunderstorm", "11"),
}

RATE_REASONS = {
    "minutely": "Minutely API request limit exceeded. Please try again in one minute.",
    "hourly": "Hourly API request limit exceeded. Please try again in the next hour.",
    "daily": "Daily API request limit exceeded. Please try again tomorrow.",
}
OWM_UNAUTHORIZED = {
    "cod": 401,
    "message": "Invalid API key. Please see https://openweathermap.org/faq#error401 for more info.",
}
OWM_TOO_MANY = {
    "cod": 429,
    "message": "Your account is temporary blocked due to exceeding of requests limitation of "
    "your subscription type.",
}


@dataclass
class WeatherLimits:
    """Open-Meteo's free-tier request weights per window (one counter for the sandbox)."""

    minutely: float = 600
    hourly: float = 5_000
    daily: float = 10_000


@dataclass
class WeatherFaults:
    """Injected faults, all off by default. Change them with `WeatherSandbox.set_faults()`.

    `*_next` counts are consumed as weather API requests (archive and OWM) arrive; the rate
    draws from the sandbox's seeded RNG, so a given request sequence meets the same faults.
    """

    latency_seconds: float = 0.0
    error_5xx_next: int = 0  # cycles 500 (JSON, from the API), 502, 503 (HTML gateway pages)
    error_5xx_rate: float = 0.0
    drop_connection_next: int = 0  # close the socket without answering
    truncate_body_next: int = 0  # full Content-Length, half the body, then close
    rate_limit_next: int = 0  # this many forced 429 ("Minutely ..." / OWM's 429)
    outage: bool = False  # every weather API request is a 503 HTML page until cleared
    malformed_next: int = 0  # 200 answers with an invalid JSON body


def request_weight(n_variables: int, days_per_location: list[int]) -> float:
    """What a served archive request costs in Open-Meteo's rate limiter.

    Per location (or location-range): max(1, vf, vf * days / 14), vf = variables / 10.
    """
    vf = n_variables / 10
    return float(sum(max(1.0, vf, vf * days / 14) for days in days_per_location))


# -- deterministic weather ------------------------------------------------------------------
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


# -- request parsing ------------------------------------------------------------------------
class _BadRequest(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Location:
    lat: float
    lng: float
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass
class _ArchiveQuery:
    locations: list[_Location]
    variables: list[str]
    tz_name: str
    zone: ZoneInfo | None
    wind_unit: str
    temperature_unit: str
    timeformat: str

    @property
    def weight(self) -> float:
        return request_weight(len(self.variables), [loc.days for loc in self.locations])


def _split(raw: str) -> list[str]:
    return [p.strip() for p in raw.split(",")] if raw.strip() else []


def _floats(params: dict[str, str], name: str) -> list[float]:
    try:
        return [float(v) for v in _split(params.get(name, ""))]
    except ValueError:
        raise _BadRequest(f"Value of type 'Float' required for key '{name}'.") from None


def _dates(raw: list[str]) -> list[date]:
    out = []
    for value in raw:
        try:
            out.append(date.fromisoformat(value))
        except ValueError:
            raise _BadRequest("Invalid date format. Make sure to use 'YYYY-MM-DD'") from None
    return out


def _choice(params: dict[str, str], name: str, default: str, allowed: Any, kind: str) -> str:
    value = params.get(name, "").strip() or default
    if value not in allowed:
        raise _BadRequest(f"Cannot initialize {kind} from invalid String value {value}.")
    return value


# -- the sandbox ----------------------------------------------------------------------------
class WeatherSandbox:
    """Open-Meteo's archive and OpenWeatherMap's timemachine, offline; thread-safe (one lock).

    With `clock` given (e.g. a `StravaSandbox.now`), `now()` is `clock()` and the clock belongs
    to its owner: `set_clock` and `advance_clock` raise `SandboxError` (the control API
    answers 400); move the owner's clock instead.
    """

    def __init__(
        self,
        seed: int = 0,
        limits: WeatherLimits | None = None,
        lag_days: float = 5,
        max_locations: int = 1000,
        owm_api_key: str = DEFAULT_OWM_KEY,
        owm_per_minute: int = 60,
        owm_daily: int = 1000,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.seed = seed
        self.limits = limits or WeatherLimits()
        self.lag_days = lag_days
        self.max_locations = max_locations
        self.owm_api_key = owm_api_key
        self.owm_per_minute = owm_per_minute
        self.owm_daily = owm_daily
        self.requests: list[dict[str, Any]] = []  # the request log, oldest first
        self.locations_served = 0  # location objects answered by /v1/archive
        self._clock = clock
        self._lock = threading.RLock()
        self._offset = 0.0
        self._rng = random.Random(f"weather-sandbox:{seed}:faults")
        self._faults = WeatherFaults()
        self._errors_injected = 0
        self._windows = {"minutely": -1, "hourly": -1, "daily": -1}
        self._used = {"minutely": 0.0, "hourly": 0.0, "daily": 0.0}
        self._owm_windows = {"minutely": -1, "daily": -1}
        self._owm_used = {"minutely": 0, "daily": 0}
        self._total_weight = 0.0
        self._owm_total = 0

    # -- clock -----------------------------------------------------------------------------
    def now(self) -> float:
        """Sandbox time (epoch seconds): the shared clock, or the wall clock plus an offset."""
        if self._clock is not None:
            return self._clock()
        return time.time() + self._offset

    def _own_clock(self) -> None:
        if self._clock is not None:
            raise SandboxError("the clock is shared: set it on its owner")

    def set_clock(self, epoch: float) -> None:
        """Make `now()` equal `epoch` from this moment on; it keeps running in real time."""
        with self._lock:
            self._own_clock()
            self._offset = epoch - time.time()

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            self._own_clock()
            self._offset += seconds

    # -- ground truth ----------------------------------------------------------------------
    def weather_at(self, lat: float, lng: float, hour_epoch: float) -> dict[str, Any]:
        """The weather of the grid cell and UTC hour containing the arguments, metric units
        (°C, %, hPa, mm, cm of snow, m/s, metres of visibility), ignoring the archive lag."""
        cell = _Cell(self.seed, lat, lng)
        hour = math.floor(hour_epoch / HOUR)
        return {
            "latitude": cell.lat,
            "longitude": cell.lng,
            "elevation": cell.elevation,
            "time": hour * HOUR,
            **_weather(cell, hour),
        }

    # -- limits and usage -------------------------------------------------------------------
    def set_limits(self, limits: WeatherLimits) -> None:
        with self._lock:
            self.limits = limits

    def _roll(self) -> None:
        now = self.now()
        current = {
            "minutely": int(now // MINUTE),
            "hourly": int(now // HOUR),
            "daily": int(now // DAY),
        }
        for name, window in current.items():
            if self._windows[name] != window:
                self._windows[name] = window
                self._used[name] = 0.0
        for name in ("minutely", "daily"):
            if self._owm_windows[name] != current[name]:
                self._owm_windows[name] = current[name]
                self._owm_used[name] = 0

    def usage(self) -> dict[str, Any]:
        """Usage and limits of the three Open-Meteo windows (and OWM's), weight served."""
        with self._lock:
            self._roll()
            u, w = self._used, self._windows
            return {
                "minutely": u["minutely"],
                "hourly": u["hourly"],
                "daily": u["daily"],
                **{f"limit_{k}": v for k, v in asdict(self.limits).items()},
                "minutely_resets_at": (w["minutely"] + 1) * MINUTE,
                "hourly_resets_at": (w["hourly"] + 1) * HOUR,
                "daily_resets_at": (w["daily"] + 1) * DAY,
                "total_weight": self._total_weight,
                "locations_served": self.locations_served,
                "owm_minutely": self._owm_used["minutely"],
                "owm_daily": self._owm_used["daily"],
                "owm_limit_minutely": self.owm_per_minute,
                "owm_limit_daily": self.owm_daily,
                "owm_total": self._owm_total,
            }

    def reset_usage(self) -> None:
        """Empty every window and the totals."""
        with self._lock:
            for key in self._used:
                self._used[key] = 0.0
            for key in self._owm_used:
                self._owm_used[key] = 0
            self._total_weight = 0.0
            self._owm_total = 0
            self.locations_served = 0

    def _over_limit(self) -> str | None:
        """The first full window (minutely, hourly, daily), or None."""
        self._roll()
        for name in ("minutely", "hourly", "daily"):
            if self._used[name] >= getattr(self.limits, name):
                return name
        return None

    # -- faults ----------------------------------------------------------------------------
    @property
    def faults(self) -> WeatherFaults:
        """A snapshot of the current faults (change them with `set_faults`)."""
        with self._lock:
            return copy.deepcopy(self._faults)

    def set_faults(self, **changes: Any) -> WeatherFaults:
        """Change some faults, leaving the others as they are."""
        with self._lock:
            known = {f.name for f in fields(WeatherFaults)}
            unknown = sorted(set(changes) - known)
            if unknown:
                raise SandboxError(f"unknown faults: {unknown}")
            checked = {name: self._checked_fault(name, v) for name, v in changes.items()}
            for name, value in checked.items():
                setattr(self._faults, name, value)
            return copy.deepcopy(self._faults)

    @staticmethod
    def _checked_fault(name: str, value: Any) -> Any:
        try:
            if name == "outage":
                if not isinstance(value, bool):
                    raise SandboxError("outage must be true or false")
                return value
            if name.endswith(("_rate", "_seconds")):
                value = float(value)
                if not value >= 0 or (name.endswith("_rate") and value > 1):
                    raise SandboxError(f"{name} must be in [0, 1] (rates) or >= 0 (seconds)")
                return value
            if isinstance(value, bool) or int(value) != value:
                raise SandboxError(f"{name} must be a whole number")
            value = int(value)
            if value < 0:
                raise SandboxError(f"{name} must be >= 0")
            return value
        except (TypeError, ValueError) as exc:
            if isinstance(exc, SandboxError):
                raise
            raise SandboxError(f"bad value for {name}: {value!r}") from None

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = WeatherFaults()

    # -- request log -----------------------------------------------------------------------
    def _log(
        self,
        kind: str,
        method: str,
        path: str,
        status: int,
        *,
        locations: int = 0,
        days: int = 0,
        weight: float = 0.0,
        fault: str | None = None,
    ) -> None:
        if len(self.requests) >= MAX_LOGGED_REQUESTS:
            del self.requests[: MAX_LOGGED_REQUESTS // 2]
        self.requests.append(
            {
                "time": self.now(),
                "kind": kind,
                "method": method,
                "path": path,
                "status": status,
                "locations": locations,
                "days": days,
                "weight": weight,
                "fault": fault,
            }
        )

    def request_count(self, kind: str | None = "archive") -> int:
        """Logged requests of a kind ("archive", "owm", "control", "other"; None: all)."""
        with self._lock:
            return sum(1 for r in self.requests if kind is None or r["kind"] == kind)

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- HTTP entry point ------------------------------------------------------------------
    def handle(
        self, method: str, path: str, query_string: str, headers: dict[str, str], body: bytes
    ) -> Response:
        """Answer one HTTP request (`headers` with lower-case names)."""
        if len(path) > 1:
            path = path.rstrip("/")
        if path == "/_weather" or path.startswith("/_weather/"):
            resp = self._control(method, path, body)
            with self._lock:
                self._log("control", method, path, resp.status)
            return resp
        params = _parse_query(query_string)
        if path == ARCHIVE_PATH and method in ("GET", "POST", "HEAD"):
            if method == "POST" and body:
                params.update(_parse_query(body.decode("utf-8", "replace")))
            return self._archive(method, path, params)
        if path == OWM_PATH and method in ("GET", "HEAD"):
            return self._owm(method, path, params)
        resp = _not_found()
        with self._lock:
            self._log("other", method, path, resp.status)
        return resp

    def _gateway(self, api: str) -> tuple[Response | None, int | None, str | None]:
        """Faults in front of the API (under the lock): (answer or None, 5xx to inject)."""
        f = self._faults
        if f.outage:
            return _gateway_page(503), None, "outage"
        if f.drop_connection_next > 0:
            f.drop_connection_next -= 1
            return Response(0, action="drop"), None, "drop"
        if f.error_5xx_next > 0 or (f.error_5xx_rate and self._rng.random() < f.error_5xx_rate):
            f.error_5xx_next = max(0, f.error_5xx_next - 1)
            injected = (500, 502, 503)[self._errors_injected % 3]
            self._errors_injected += 1
            if injected != 500:
                return _gateway_page(injected), None, "5xx"
            return None, 500, "5xx"
        if f.rate_limit_next > 0:
            f.rate_limit_next -= 1
            if api == "owm":
                return _json(429, OWM_TOO_MANY), None, "rate_limit"
            return _reason(429, RATE_REASONS["minutely"]), None, "rate_limit"
        return None, None, None

    def _finish(self, resp: Response, fault: str | None) -> str | None:
        """Body faults of a served answer (under the lock), and the latency."""
        f = self._faults
        if resp.status == 200 and f.malformed_next > 0:
            f.malformed_next -= 1
            resp.body = resp.body[: max(1, len(resp.body) * 3 // 5)] + b',"hourly":{,]'
            fault = "malformed"
        if f.truncate_body_next > 0 and resp.action == "send":
            f.truncate_body_next -= 1
            resp.action, fault = "truncate", "truncate"
        resp.delay = f.latency_seconds
        return fault

    # -- Open-Meteo archive ----------------------------------------------------------------
    def _archive(self, method: str, path: str, params: dict[str, str]) -> Response:
        started = time.perf_counter()
        with self._lock:
            resp, injected, fault = self._gateway("archive")
            if resp is not None:  # in front of the API: no body faults, nothing metered
                resp.delay = self._faults.latency_seconds
                self._log("archive", method, path, resp.status, fault=fault)
                return resp
            query: _ArchiveQuery | None = None
            if resp is None:
                over = self._over_limit()
                if over is not None:
                    resp = _reason(429, RATE_REASONS[over])
            if resp is None:
                try:
                    query = self._archive_query(params)
                except _BadRequest as exc:
                    resp = _reason(400, exc.reason)
            if resp is None and injected == 500:
                resp = _reason(500, "Internal Server Error")
            if resp is not None or query is None:
                assert resp is not None
                fault = self._finish(resp, fault)
                self._log("archive", method, path, resp.status, fault=fault)
                return resp
            weight = query.weight
            for name in self._used:
                self._used[name] += weight
            self._total_weight += weight
            self.locations_served += len(query.locations)
            lag_cutoff = self.now() - self.lag_days * DAY
        # The answer is computed outside the lock: a long range does not hold other clients up.
        answers = [self._location_json(query, loc, lag_cutoff) for loc in query.locations]
        elapsed = (time.perf_counter() - started) * 1000
        for answer in answers:
            answer["generationtime_ms"] = round(elapsed, 3)
        payload: Any = answers[0] if len(answers) == 1 else answers
        resp = Response(200, _dumps(payload), [("Content-Type", JSON_TYPE)])
        with self._lock:
            fault = self._finish(resp, None)
            self._log(
                "archive",
                method,
                path,
                200,
                locations=len(query.locations),
                days=sum(loc.days for loc in query.locations),
                weight=query.weight,
                fault=fault,
            )
        return resp

    def _archive_query(self, params: dict[str, str]) -> _ArchiveQuery:
        lats, lngs = _floats(params, "latitude"), _floats(params, "longitude")
        if len(lats) != len(lngs):
            raise _BadRequest(
                "Parameter 'latitude' and 'longitude' must have the same number of elements"
            )
        if not lats:
            raise _BadRequest("Value of type 'Float' required for key 'latitude'.")
        if len(lats) > self.max_locations:
            raise _BadRequest(f"Only up to {self.max_locations} locations can be requested at once")
        for lat, lng in zip(lats, lngs, strict=True):
            if not -90 <= lat <= 90:
                raise _BadRequest(f"Latitude must be in range of -90 to 90°. Given: {lat}.")
            if not -180 <= lng <= 180:
                raise _BadRequest(f"Longitude must be in range of -180 to 180°. Given: {lng}.")
        raw_start, raw_end = (
            _split(params.get("start_date", "")),
            _split(params.get("end_date", "")),
        )
        if not raw_start or not raw_end:
            raise _BadRequest("Both 'start_date' and 'end_date' must be set in the url")
        starts, ends = _dates(raw_start), _dates(raw_end)
        n = len(lats)
        if n == 1 and len(starts) == len(ends) and len(starts) > 1:
            lats, lngs = lats * len(starts), lngs * len(starts)
            n = len(starts)
        if len(starts) != len(ends) or len(starts) not in (1, n):
            raise _BadRequest(
                "Parameter 'start_date' and 'end_date' must have the same number of elements "
                "as coordinates"
            )
        if n > self.max_locations:
            raise _BadRequest(f"Only up to {self.max_locations} locations can be requested at once")
        today = datetime.fromtimestamp(self.now(), UTC).date()
        for name, values in (("start_date", starts), ("end_date", ends)):
            for value in values:
                if not FIRST_DATE <= value <= today:
                    raise _BadRequest(
                        f"Parameter '{name}' is out of allowed range from "
                        f"{FIRST_DATE.isoformat()} to {today.isoformat()}"
                    )
        if len(starts) == 1:
            starts, ends = starts * n, ends * n
        for start, end in zip(starts, ends, strict=True):
            if end < start:
                raise _BadRequest("End-date must be larger or equals than start-date")
        variables = _split(params.get("hourly", ""))
        for name in variables:
            if name not in VARIABLES:
                raise _BadRequest(
                    f"Cannot initialize ArchiveVariable from invalid String value {name}."
                )
        tz_name = params.get("timezone", "").strip() or "GMT"
        zone: ZoneInfo | None = None
        if tz_name.lower() in ("gmt", "auto"):
            tz_name = "GMT"
        else:
            try:
                zone = ZoneInfo(tz_name)
            except (ZoneInfoNotFoundError, ValueError):
                raise _BadRequest("Invalid timezone") from None
        return _ArchiveQuery(
            locations=[
                _Location(lat, lng, start, end)
                for lat, lng, start, end in zip(lats, lngs, starts, ends, strict=True)
            ],
            variables=list(dict.fromkeys(variables)),
            tz_name=tz_name,
            zone=zone,
            wind_unit=_choice(params, "wind_speed_unit", "kmh", WIND_UNITS, "WindspeedUnit"),
            temperature_unit=_choice(
                params, "temperature_unit", "celsius", TEMPERATURE_UNITS, "TemperatureUnit"
            ),
            timeformat=_choice(
                params, "timeformat", "iso8601", ("iso8601", "unixtime"), "Timeformat"
            ),
        )

    def _location_json(
        self, query: _ArchiveQuery, loc: _Location, lag_cutoff: float
    ) -> dict[str, Any]:
        cell = _Cell(self.seed, loc.lat, loc.lng)
        midnight = datetime(loc.start.year, loc.start.month, loc.start.day)
        offset, abbreviation = 0, "GMT"
        if query.zone is not None:
            local = midnight.replace(tzinfo=query.zone)
            offset = int(local.utcoffset().total_seconds())  # type: ignore[union-attr]
            abbreviation = local.tzname() or query.tz_name
        first = calendar.timegm(midnight.timetuple()) - offset
        epochs = [first + HOUR * i for i in range(loc.days * 24)]
        answer: dict[str, Any] = {
            "latitude": cell.lat,
            "longitude": cell.lng,
            "generationtime_ms": 0.0,
            "utc_offset_seconds": offset,
            "timezone": query.tz_name,
            "timezone_abbreviation": abbreviation,
            "elevation": cell.elevation,
        }
        if not query.variables:
            return answer
        fahrenheit = query.temperature_unit == "fahrenheit"
        wind_factor, wind_unit = WIND_UNITS[query.wind_unit]
        units: dict[str, str] = {"time": query.timeformat}
        for name in query.variables:
            if name in _TEMPERATURES:
                units[name] = TEMPERATURE_UNITS[query.temperature_unit]
            elif name in _WINDS:
                units[name] = wind_unit
            else:
                units[name] = _FIXED_UNITS[name]
        if query.timeformat == "unixtime":
            times: list[Any] = list(epochs)
        else:
            times = [
                (midnight + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M")
                for i in range(len(epochs))
            ]
        series: dict[str, list[Any]] = {name: [] for name in query.variables}
        for epoch in epochs:
            if epoch > lag_cutoff:
                for values in series.values():
                    values.append(None)
                continue
            w = _weather(cell, epoch // HOUR)
            for name, values in series.items():
                value = w[name]
                if name in _TEMPERATURES and fahrenheit:
                    value = _fahrenheit(value)
                elif name in _WINDS and wind_factor != 1.0:
                    value = round(value * wind_factor, 1)
                values.append(value)
        answer["hourly_units"] = units
        answer["hourly"] = {"time": times, **series}
        return answer

    # -- OpenWeatherMap timemachine --------------------------------------------------------
    def _owm(self, method: str, path: str, params: dict[str, str]) -> Response:
        with self._lock:
            resp, injected, fault = self._gateway("owm")
            if resp is not None:
                resp.delay = self._faults.latency_seconds
                self._log("owm", method, path, resp.status, locations=1, fault=fault)
                return resp
            if params.get("appid", "") != self.owm_api_key:
                resp = _json(401, OWM_UNAUTHORIZED)
            if resp is None:
                self._roll()
                u = self._owm_used
                if u["minutely"] >= self.owm_per_minute or u["daily"] >= self.owm_daily:
                    resp = _json(429, OWM_TOO_MANY)
            if resp is None:
                resp = self._owm_answer(params)
                if resp.status == 200 and injected == 500:
                    resp = _json(500, {"cod": 500, "message": "Internal Server Error"})
                if resp.status != 500:
                    self._owm_used["minutely"] += 1
                    self._owm_used["daily"] += 1
                    self._owm_total += 1
            assert resp is not None
            fault = self._finish(resp, fault)
            self._log("owm", method, path, resp.status, locations=1, fault=fault)
            return resp

    def _owm_answer(self, params: dict[str, str]) -> Response:
        coords = []
        for name, word, bound in (("lat", "latitude", 90), ("lon", "longitude", 180)):
            try:
                value = float(params.get(name, ""))
            except ValueError:
                value = math.nan
            if not -bound <= value <= bound:
                return _json(400, {"cod": "400", "message": f"wrong {word}"})
            coords.append(value)
        try:
            dt = int(params.get("dt", ""))
        except ValueError:
            return _json(400, {"cod": "400", "message": "wrong dt"})
        units = params.get("units", "").strip() or "standard"
        if units not in ("standard", "metric", "imperial"):
            units = "standard"  # OpenWeatherMap ignores unknown units
        lat, lon = coords
        hour = dt // HOUR
        w = _weather(_Cell(self.seed, lat, lon), hour)

        def temp(celsius: float) -> float:
            if units == "metric":
                return celsius
            if units == "imperial":
                return round(celsius * 1.8 + 32, 2)
            return round(celsius + 273.15, 2)

        speed = 2.23694 if units == "imperial" else 1.0
        owm_id, main, description, icon = _OWM_CONDITIONS[w["weather_code"]]
        hour_data: dict[str, Any] = {
            "dt": hour * HOUR,
            "temp": temp(w["temperature_2m"]),
            "feels_like": temp(w["apparent_temperature"]),
            "pressure": int(round(w["pressure_msl"])),
            "humidity": w["relative_humidity_2m"],
            "dew_point": temp(w["dew_point_2m"]),
            "uvi": w["uvi"],
            "clouds": w["cloud_cover"],
            "visibility": w["visibility"],
            "wind_speed": round(w["wind_speed_10m"] * speed, 2),
            "wind_deg": w["wind_direction_10m"],
            "wind_gust": round(w["wind_gusts_10m"] * speed, 2),
            "weather": [
                {
                    "id": owm_id,
                    "main": main,
                    "description": description,
                    "icon": icon + ("d" if w["is_day"] else "n"),
                }
            ],
        }
        if w["rain"] > 0:
            hour_data["rain"] = {"1h": w["rain"]}
        if w["snowfall"] > 0:
            hour_data["snow"] = {"1h": w["precipitation"]}
        return _json(
            200,
            {
                "lat": round(lat, 4),
                "lon": round(lon, 4),
                "timezone": "UTC",
                "timezone_offset": 0,
                "data": [hour_data],
            },
        )

    # -- control API (/_weather/...) -------------------------------------------------------
    def _control(self, method: str, path: str, body: bytes) -> Response:
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            return _reason(400, "the body is not JSON")
        if not isinstance(data, dict):
            return _reason(400, "the body must be a JSON object")
        parts = path.strip("/").split("/")[1:]
        try:
            return self._control_route(method, parts, data)
        except SandboxError as exc:
            return _reason(400, str(exc))
        except (KeyError, ValueError, TypeError) as exc:
            return _reason(400, f"{type(exc).__name__}: {exc}")

    def _control_route(self, method: str, parts: list[str], data: dict[str, Any]) -> Response:
        if parts == ["faults"] and method == "GET":
            return _json(200, asdict(self.faults))
        if parts == ["faults"] and method in ("PATCH", "PUT", "POST"):
            return _json(200, asdict(self.set_faults(**data)))
        if parts == ["faults"] and method == "DELETE":
            self.clear_faults()
            return _json(200, asdict(self.faults))
        if parts == ["limits"] and method == "GET":
            return _json(200, self._limits_json())
        if parts == ["limits"] and method in ("PUT", "PATCH", "POST"):
            with self._lock:
                owm = {k: int(data.pop(k)) for k in ("owm_per_minute", "owm_daily") if k in data}
                current = asdict(self.limits)
                unknown = sorted(set(data) - set(current))
                if unknown:
                    raise SandboxError(f"unknown limits: {unknown}")
                new = {k: float(v) for k, v in {**current, **data}.items()}
                self.set_limits(WeatherLimits(**new))
                for key, value in owm.items():
                    setattr(self, key, value)
            return _json(200, self._limits_json())
        common = common_control(self, method, parts, data)
        if common is not None:
            return common
        return _not_found()

    def _limits_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                **asdict(self.limits),
                "owm_per_minute": self.owm_per_minute,
                "owm_daily": self.owm_daily,
            }


def _json(status: int, value: Any) -> Response:
    return Response(status, _dumps(value), [("Content-Type", JSON_TYPE)])


def _reason(status: int, reason: str) -> Response:
    """Open-Meteo's error body."""
    return _json(status, {"error": True, "reason": reason})


def _not_found() -> Response:
    return _reason(404, "Not Found")
