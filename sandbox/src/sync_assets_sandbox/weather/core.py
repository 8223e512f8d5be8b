"""The weather sandbox's state, clock, request log, HTTP entry point (gateway faults, usage)
and control API (`/_weather/...`).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from sync_assets_sandbox.strava.common import (
    MAX_LOGGED_REQUESTS,
    Response,
    SandboxError,
    _gateway_page,
    _parse_query,
)
from sync_assets_sandbox.strava.control import common_control
from sync_assets_sandbox.weather.common import (
    ARCHIVE_PATH,
    DEFAULT_OWM_KEY,
    HOUR,
    OWM_PATH,
    OWM_TOO_MANY,
    RATE_REASONS,
    _json,
    _not_found,
    _reason,
)
from sync_assets_sandbox.weather.limits import WeatherFaults, WeatherLimits
from sync_assets_sandbox.weather.model import _Cell, _weather


class WeatherCore:
    """What `WeatherSandbox` holds; thread-safe (one lock).

    The other parts (`ArchiveMixin`, `OpenWeatherMapMixin`, `WeatherLimitMixin`) work on this
    state."""

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
