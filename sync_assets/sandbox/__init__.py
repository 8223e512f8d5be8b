"""Offline stand-ins for the outside world, served on loopback (`sync-assets sandbox`)."""

from sync_assets.sandbox.serving import SandboxServer, serve
from sync_assets.sandbox.strava_api import AthleteHandle, Faults, RateLimits, StravaSandbox
from sync_assets.sandbox.synthetic import generate_activities

__all__ = [
    "AthleteHandle",
    "Faults",
    "RateLimits",
    "SandboxServer",
    "StravaSandbox",
    "generate_activities",
    "serve",
]
