"""What weather requests cost and what they may use: `request_weight` (Open-Meteo's pricing),
the free-tier windows (`WeatherLimits`) and the injected faults (`WeatherFaults`).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, fields
from typing import Any

from sync_assets_sandbox.strava.common import (
    SandboxError,
)
from sync_assets_sandbox.weather.common import DAY, HOUR, MINUTE


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


class WeatherLimitMixin:
    """The limits and faults part of `WeatherSandbox` (its state is set up by `WeatherCore`)."""

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
