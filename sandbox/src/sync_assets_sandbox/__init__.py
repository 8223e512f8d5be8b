"""Offline Strava API v3 and Open-Meteo archive (`python -m sync_assets_sandbox`, or
`sync-assets sandbox`): OAuth, activities, weather, limits and faults.

`StravaSandbox` holds the state (athletes, tokens, rate-limit windows, faults, clock),
`SandboxServer` serves it over HTTP on loopback, `serve` runs one in the foreground, and
`generate_activities` makes the deterministic synthetic histories.

Its own distribution (`sync-assets-sandbox`, `pip install -e ./sandbox` from the repository):
it imports nothing from `sync_assets`. The parts: `strava` (state, OAuth, rate limits, faults,
API, control API), `weather` (data model, limits and pricing, Open-Meteo archive,
OpenWeatherMap), `athletes` (synthetic athletes and activities), `push` (webhook events),
`server` (the stdlib HTTP server).
"""

from sync_assets_sandbox.athletes import NO_DISTANCE_SPORTS, SPORTS, generate_activities
from sync_assets_sandbox.server import SandboxServer, serve
from sync_assets_sandbox.strava import (
    DEFAULT_LIST_ORDER,
    LIST_ORDERS,
    AthleteHandle,
    Faults,
    RateLimits,
    SandboxError,
    StravaSandbox,
)
from sync_assets_sandbox.weather import (
    SNOW_CODES,
    VARIABLES,
    WMO_CODES,
    WeatherFaults,
    WeatherLimits,
    WeatherSandbox,
    request_weight,
)

__all__ = [
    "DEFAULT_LIST_ORDER",
    "LIST_ORDERS",
    "NO_DISTANCE_SPORTS",
    "SNOW_CODES",
    "SPORTS",
    "VARIABLES",
    "WMO_CODES",
    "AthleteHandle",
    "Faults",
    "RateLimits",
    "SandboxError",
    "SandboxServer",
    "StravaSandbox",
    "WeatherFaults",
    "WeatherLimits",
    "WeatherSandbox",
    "generate_activities",
    "request_weight",
    "serve",
]
