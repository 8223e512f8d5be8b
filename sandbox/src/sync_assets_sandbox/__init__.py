"""Offline Strava API v3 and Open-Meteo archive (`sync-assets sandbox`): OAuth, activities,
weather, limits and faults.

`StravaSandbox` holds the state (athletes, tokens, rate-limit windows, faults, clock),
`SandboxServer` serves it over HTTP on loopback, `serve` runs one in the foreground, and
`generate_activities` makes the deterministic synthetic histories.
"""

from sync_assets_sandbox.athletes import generate_activities
from sync_assets_sandbox.server import SandboxServer, serve
from sync_assets_sandbox.strava import AthleteHandle, Faults, RateLimits, StravaSandbox
from sync_assets_sandbox.weather import WeatherFaults, WeatherLimits, WeatherSandbox

__all__ = [
    "AthleteHandle",
    "Faults",
    "RateLimits",
    "SandboxServer",
    "StravaSandbox",
    "WeatherFaults",
    "WeatherLimits",
    "WeatherSandbox",
    "generate_activities",
    "serve",
]
