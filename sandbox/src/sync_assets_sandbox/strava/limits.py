"""Strava's per-application rate limits: the 15-minute and daily windows, metering and the
`X-RateLimit-*` headers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sync_assets_sandbox.strava.common import DAY, QUARTER_HOUR


@dataclass
class RateLimits:
    """Per-application request limits; the read limits apply to GET requests only."""

    overall_15min: int = 200
    overall_daily: int = 2_000
    read_15min: int = 100
    read_daily: int = 1_000


class RateLimitMixin:
    """The rate-limit part of `StravaSandbox` (its state is set up by `SandboxState`)."""

    # -- limits and usage -----------------------------------------------------------------
    def set_limits(self, limits: RateLimits) -> None:
        with self._lock:
            self.limits = limits

    def _roll_windows(self) -> None:
        now = self.now()
        quarter, day = int(now // QUARTER_HOUR), int(now // DAY)
        if day != self._day:
            self._day = day
            self._used["overall_daily"] = self._used["read_daily"] = 0
        if quarter != self._quarter:
            self._quarter = quarter
            self._used["overall_15min"] = self._used["read_15min"] = 0

    def usage(self) -> dict[str, Any]:
        """Current usage and limits, and when the windows reset (epoch seconds)."""
        with self._lock:
            self._roll_windows()
            u = self._used
            return {
                "usage_15min": u["overall_15min"],
                "usage_daily": u["overall_daily"],
                "read_usage_15min": u["read_15min"],
                "read_usage_daily": u["read_daily"],
                **{f"limit_{k}": v for k, v in asdict(self.limits).items()},
                "window_15min_resets_at": (self._quarter + 1) * QUARTER_HOUR,
                "window_daily_resets_at": (self._day + 1) * DAY,
            }

    def reset_usage(self) -> None:
        with self._lock:
            for key in self._used:
                self._used[key] = 0

    def _meter(self, is_read: bool) -> bool:
        """Count one API request; True when it is over a limit (and must be refused)."""
        self._roll_windows()
        u, lim = self._used, self.limits
        u["overall_15min"] += 1
        u["overall_daily"] += 1
        if is_read:
            u["read_15min"] += 1
            u["read_daily"] += 1
        over = u["overall_15min"] > lim.overall_15min or u["overall_daily"] > lim.overall_daily
        if is_read:
            over = over or u["read_15min"] > lim.read_15min or u["read_daily"] > lim.read_daily
        return over

    def _rate_headers(self) -> list[tuple[str, str]]:
        u, lim = self._used, self.limits
        return [
            ("X-RateLimit-Limit", f"{lim.overall_15min},{lim.overall_daily}"),
            ("X-RateLimit-Usage", f"{u['overall_15min']},{u['overall_daily']}"),
            ("X-ReadRateLimit-Limit", f"{lim.read_15min},{lim.read_daily}"),
            ("X-ReadRateLimit-Usage", f"{u['read_15min']},{u['read_daily']}"),
        ]
