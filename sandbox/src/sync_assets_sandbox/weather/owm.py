"""OpenWeatherMap's One Call 3.0 timemachine (`/data/3.0/onecall/timemachine`)."""

from __future__ import annotations

import math
from typing import Any

from sync_assets_sandbox.strava.common import (
    Response,
)
from sync_assets_sandbox.weather.common import (
    _OWM_CONDITIONS,
    HOUR,
    OWM_TOO_MANY,
    OWM_UNAUTHORIZED,
    _json,
)
from sync_assets_sandbox.weather.model import _Cell, _weather


class OpenWeatherMapMixin:
    """The OpenWeatherMap part of `WeatherSandbox` (its state is set up by `WeatherCore`)."""

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
