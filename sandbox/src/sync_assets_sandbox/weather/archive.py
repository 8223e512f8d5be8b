"""Open-Meteo's `/v1/archive`: request parsing and the answer per location."""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sync_assets_sandbox.strava.common import (
    JSON_TYPE,
    Response,
    _dumps,
)
from sync_assets_sandbox.weather.common import (
    _FIXED_UNITS,
    _TEMPERATURES,
    _WINDS,
    DAY,
    FIRST_DATE,
    HOUR,
    RATE_REASONS,
    TEMPERATURE_UNITS,
    VARIABLES,
    WIND_UNITS,
    _reason,
)
from sync_assets_sandbox.weather.limits import request_weight
from sync_assets_sandbox.weather.model import _Cell, _fahrenheit, _weather


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


class ArchiveMixin:
    """The Open-Meteo archive part of `WeatherSandbox` (its state is set up by `WeatherCore`)."""

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
