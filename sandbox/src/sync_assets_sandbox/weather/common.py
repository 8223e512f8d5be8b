"""The weather sandbox's constants (paths, variables, units, weather codes, the services' error
bodies) and answers.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sync_assets_sandbox.strava.common import (
    JSON_TYPE,
    Response,
    _dumps,
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


def _json(status: int, value: Any) -> Response:
    return Response(status, _dumps(value), [("Content-Type", JSON_TYPE)])


def _reason(status: int, reason: str) -> Response:
    """Open-Meteo's error body."""
    return _json(status, {"error": True, "reason": reason})


def _not_found() -> Response:
    return _reason(404, "Not Found")
