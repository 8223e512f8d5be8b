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

from sync_assets_sandbox.weather.archive import ArchiveMixin
from sync_assets_sandbox.weather.common import (
    ARCHIVE_PATH,
    DAY,
    DEFAULT_OWM_KEY,
    FIRST_DATE,
    HOUR,
    MINUTE,
    OWM_PATH,
    OWM_TOO_MANY,
    OWM_UNAUTHORIZED,
    PRECIPITATION_CODES,
    RATE_REASONS,
    SNOW_CODES,
    TEMPERATURE_UNITS,
    VARIABLES,
    WIND_UNITS,
    WMO_CODES,
)
from sync_assets_sandbox.weather.core import WeatherCore
from sync_assets_sandbox.weather.limits import (
    WeatherFaults,
    WeatherLimitMixin,
    WeatherLimits,
    request_weight,
)
from sync_assets_sandbox.weather.model import grid
from sync_assets_sandbox.weather.owm import OpenWeatherMapMixin


class WeatherSandbox(ArchiveMixin, OpenWeatherMapMixin, WeatherLimitMixin, WeatherCore):
    """Open-Meteo's archive and OpenWeatherMap's timemachine, offline; thread-safe (one lock).

    With `clock` given (e.g. a `StravaSandbox.now`), `now()` is `clock()` and the clock belongs
    to its owner: `set_clock` and `advance_clock` raise `SandboxError` (the control API
    answers 400); move the owner's clock instead.

    Its parts: `WeatherCore` (state, clock, request log, HTTP entry point, control API
    `/_weather/`), `ArchiveMixin` (Open-Meteo), `OpenWeatherMapMixin`,
    `WeatherLimitMixin` (limits, usage and faults).
    """


__all__ = [
    "ARCHIVE_PATH",
    "DAY",
    "DEFAULT_OWM_KEY",
    "FIRST_DATE",
    "HOUR",
    "MINUTE",
    "OWM_PATH",
    "OWM_TOO_MANY",
    "OWM_UNAUTHORIZED",
    "PRECIPITATION_CODES",
    "RATE_REASONS",
    "SNOW_CODES",
    "TEMPERATURE_UNITS",
    "VARIABLES",
    "WIND_UNITS",
    "WMO_CODES",
    "WeatherFaults",
    "WeatherLimits",
    "WeatherSandbox",
    "grid",
    "request_weight",
]
