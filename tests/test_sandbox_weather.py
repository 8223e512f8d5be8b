"""The weather sandbox as a client meets it: real HTTP over loopback with httpx."""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sync_assets_sandbox import (
    SNOW_CODES,
    VARIABLES,
    WMO_CODES,
    SandboxError,
    SandboxServer,
    WeatherLimits,
    WeatherSandbox,
    request_weight,
)

ARCHIVE = "/v1/archive"
OWM = "/data/3.0/onecall/timemachine"
NOW = datetime(2024, 6, 15, 12, 0, 5, tzinfo=UTC).timestamp()  # 5 s into a minute
ALL = ",".join(VARIABLES)
BERLIN = {"latitude": "52.52", "longitude": "13.41"}
OWM_KEY = "sandbox-owm-key"


@pytest.fixture
def sbx() -> WeatherSandbox:
    sandbox = WeatherSandbox(seed=3)
    sandbox.set_clock(NOW)
    return sandbox


def weather_server(sbx: WeatherSandbox) -> SandboxServer:
    """`SandboxServer` serving this sandbox: passed as `weather` too where the server routes
    weather paths to a sandbox of its own (a combined Strava + weather server)."""
    if "weather" in inspect.signature(SandboxServer).parameters:
        return SandboxServer(sbx, weather=sbx)  # type: ignore[arg-type]
    return SandboxServer(sbx)  # type: ignore[arg-type]


@pytest.fixture
def http(sbx: WeatherSandbox) -> Iterator[httpx.Client]:
    with weather_server(sbx) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        yield client


def archive(http: httpx.Client, **params: str) -> Any:
    resp = http.get(ARCHIVE, params=params)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    return resp.json()


def error(http: httpx.Client, status: int = 400, **params: str) -> str:
    resp = http.get(ARCHIVE, params=params)
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] is True
    return body["reason"]


def days(start: str, end: str, **extra: str) -> dict[str, str]:
    return {**BERLIN, "start_date": start, "end_date": end, **extra}


# -- shape and units -------------------------------------------------------------------------
def test_single_location_shape_and_units(http: httpx.Client) -> None:
    body = archive(http, **days("2024-06-01", "2024-06-02", hourly=ALL))
    assert isinstance(body, dict)
    assert body["latitude"] == 52.5 and body["longitude"] == 13.4
    assert body["utc_offset_seconds"] == 0
    assert body["timezone"] == "GMT" and body["timezone_abbreviation"] == "GMT"
    assert isinstance(body["elevation"], float) and 0 <= body["elevation"] <= 1500
    assert isinstance(body["generationtime_ms"], float)
    units = body["hourly_units"]
    assert units["time"] == "iso8601"
    assert units["temperature_2m"] == units["dew_point_2m"] == "°C"
    assert units["wind_speed_10m"] == units["wind_gusts_10m"] == "km/h"
    assert units["relative_humidity_2m"] == units["cloud_cover"] == "%"
    assert units["pressure_msl"] == "hPa" and units["snowfall"] == "cm"
    assert units["wind_direction_10m"] == "°" and units["weather_code"] == "wmo code"
    assert units["is_day"] == "" and units["precipitation"] == "mm"
    hourly = body["hourly"]
    assert list(hourly) == ["time", *VARIABLES]
    assert len(hourly["time"]) == 48
    assert hourly["time"][0] == "2024-06-01T00:00" and hourly["time"][-1] == "2024-06-02T23:00"
    for name in VARIABLES:
        assert len(hourly[name]) == 48 and None not in hourly[name]
    for name in ("relative_humidity_2m", "wind_direction_10m", "cloud_cover", "weather_code"):
        assert all(isinstance(v, int) for v in hourly[name])
    assert set(hourly["is_day"]) == {0, 1}
    assert all(0 <= v <= 100 for v in hourly["relative_humidity_2m"] + hourly["cloud_cover"])
    assert all(0 <= v <= 360 for v in hourly["wind_direction_10m"])
    assert all(
        g >= s for g, s in zip(hourly["wind_gusts_10m"], hourly["wind_speed_10m"], strict=True)
    )
    assert all(
        d <= t + 0.05 for d, t in zip(hourly["dew_point_2m"], hourly["temperature_2m"], strict=True)
    )
    assert all(v in WMO_CODES for v in hourly["weather_code"])
    assert all(998 <= p <= 1028 for p in hourly["pressure_msl"])


def test_wind_and_temperature_units_convert_consistently(http: httpx.Client) -> None:
    vars_ = "temperature_2m,wind_speed_10m,wind_gusts_10m"
    base = days("2024-03-01", "2024-03-03", hourly=vars_)
    ms = archive(http, **base, wind_speed_unit="ms")
    kmh = archive(http, **base)
    mph = archive(http, **base, wind_speed_unit="mph")
    kn = archive(http, **base, wind_speed_unit="kn", temperature_unit="fahrenheit")
    assert ms["hourly_units"]["wind_speed_10m"] == "m/s"
    assert mph["hourly_units"]["wind_speed_10m"] == "mp/h"
    assert kn["hourly_units"]["wind_speed_10m"] == "kn"
    assert kn["hourly_units"]["temperature_2m"] == "°F"
    for name in ("wind_speed_10m", "wind_gusts_10m"):
        for i, v in enumerate(ms["hourly"][name]):
            assert abs(kmh["hourly"][name][i] - round(v * 3.6, 1)) <= 0.11
            assert abs(mph["hourly"][name][i] - round(v * 2.23694, 1)) <= 0.11
            assert abs(kn["hourly"][name][i] - round(v * 1.94384, 1)) <= 0.11
    for c, f in zip(ms["hourly"]["temperature_2m"], kn["hourly"]["temperature_2m"], strict=True):
        assert abs(f - (c * 1.8 + 32)) <= 0.11


def test_no_hourly_variables_answers_the_location_only(http: httpx.Client) -> None:
    body = archive(http, **days("2024-06-01", "2024-06-01"))
    assert "hourly" not in body and "hourly_units" not in body
    assert body["latitude"] == 52.5


def test_post_form_is_accepted(http: httpx.Client) -> None:
    resp = http.post(ARCHIVE, data=days("2024-06-01", "2024-06-01", hourly="temperature_2m"))
    assert resp.status_code == 200
    assert len(resp.json()["hourly"]["temperature_2m"]) == 24


# -- several locations and ranges --------------------------------------------------------------
def test_several_locations_answer_a_list_in_request_order(http: httpx.Client) -> None:
    body = archive(
        http,
        latitude="10.04,-33.87,60.17",
        longitude="-84.11,151.21,24.94",
        start_date="2024-01-10",
        end_date="2024-01-11",
        hourly="temperature_2m",
    )
    assert isinstance(body, list) and len(body) == 3
    assert [(b["latitude"], b["longitude"]) for b in body] == [
        (10.0, -84.1),
        (-33.9, 151.2),
        (60.2, 24.9),
    ]
    assert all(len(b["hourly"]["temperature_2m"]) == 48 for b in body)
    # January: Sydney (southern summer) is warmer than Helsinki on average.
    mean = [sum(b["hourly"]["temperature_2m"]) / 48 for b in body]
    assert mean[1] > mean[2] + 10


def test_one_date_range_per_location(http: httpx.Client) -> None:
    body = archive(
        http,
        latitude="52.52,48.85",
        longitude="13.41,2.35",
        start_date="2024-01-01,2024-02-01",
        end_date="2024-01-01,2024-02-03",
        hourly="rain",
    )
    assert [len(b["hourly"]["time"]) for b in body] == [24, 72]
    assert body[0]["hourly"]["time"][0] == "2024-01-01T00:00"
    assert body[1]["hourly"]["time"][-1] == "2024-02-03T23:00"


def test_single_coordinate_with_several_ranges(http: httpx.Client) -> None:
    body = archive(
        http,
        **BERLIN,
        start_date="2024-01-01,2024-03-01,2024-05-01",
        end_date="2024-01-02,2024-03-01,2024-05-03",
        hourly="temperature_2m",
    )
    assert isinstance(body, list) and len(body) == 3
    assert [len(b["hourly"]["time"]) for b in body] == [48, 24, 72]
    assert all((b["latitude"], b["longitude"]) == (52.5, 13.4) for b in body)
    assert [b["hourly"]["time"][0] for b in body] == [
        "2024-01-01T00:00",
        "2024-03-01T00:00",
        "2024-05-01T00:00",
    ]


# -- determinism, lag, time zones --------------------------------------------------------------
def test_values_are_deterministic(http: httpx.Client, sbx: WeatherSandbox) -> None:
    long = archive(http, **days("2024-02-01", "2024-02-10", hourly=ALL))
    again = archive(http, **days("2024-02-01", "2024-02-10", hourly=ALL))
    part = archive(http, **days("2024-02-04", "2024-02-05", hourly=ALL))
    assert long["hourly"] == again["hourly"]
    for name in VARIABLES:
        assert part["hourly"][name] == long["hourly"][name][72:120]
    # Another sandbox (same seed) agrees; the ground truth agrees with what is served.
    hour = datetime(2024, 2, 4, 5, tzinfo=UTC).timestamp()
    truth = WeatherSandbox(seed=3).weather_at(52.52, 13.41, hour + 1_234)
    assert truth == sbx.weather_at(52.5, 13.4, hour)
    assert truth["temperature_2m"] == long["hourly"]["temperature_2m"][77]
    assert truth["weather_code"] == long["hourly"]["weather_code"][77]
    assert WeatherSandbox(seed=4).weather_at(52.52, 13.41, hour) != truth


def test_recent_hours_are_null_until_the_archive_catches_up(
    http: httpx.Client, sbx: WeatherSandbox
) -> None:
    sbx.set_clock(datetime(2024, 6, 15, 12, 30, tzinfo=UTC).timestamp())
    body = archive(http, **days("2024-06-08", "2024-06-15", hourly="temperature_2m,rain"))
    times, temps = body["hourly"]["time"], body["hourly"]["temperature_2m"]
    assert len(times) == 8 * 24
    cutoff = times.index("2024-06-10T12:00")  # now - 5 days = 2024-06-10 12:30
    assert None not in temps[: cutoff + 1]
    assert set(temps[cutoff + 1 :]) == {None}
    assert set(body["hourly"]["rain"][cutoff + 1 :]) == {None}
    sbx.advance_clock(3 * 86_400)  # the data are published later
    later = archive(http, **days("2024-06-08", "2024-06-15", hourly="temperature_2m,rain"))
    assert later["hourly"]["temperature_2m"][: cutoff + 1] == temps[: cutoff + 1]
    assert None not in later["hourly"]["temperature_2m"][: cutoff + 72]


def test_time_zone_and_unixtime(http: httpx.Client) -> None:
    gmt = archive(http, **days("2024-06-01", "2024-06-02", hourly="temperature_2m"))
    local = archive(
        http, **days("2024-06-01", "2024-06-02", hourly="temperature_2m", timezone="Europe/Berlin")
    )
    assert local["utc_offset_seconds"] == 7_200
    assert local["timezone"] == "Europe/Berlin" and local["timezone_abbreviation"] == "CEST"
    assert local["hourly"]["time"][0] == "2024-06-01T00:00"
    # Local 02:00 is 00:00 GMT.
    assert local["hourly"]["temperature_2m"][2:] == gmt["hourly"]["temperature_2m"][:-2]
    unix = archive(
        http,
        **days("2024-06-01", "2024-06-01", hourly="temperature_2m"),
        timezone="Europe/Berlin",
        timeformat="unixtime",
    )
    assert unix["hourly_units"]["time"] == "unixtime"
    first = datetime(2024, 5, 31, 22, tzinfo=UTC).timestamp()
    assert unix["hourly"]["time"] == [int(first) + 3_600 * i for i in range(24)]
    auto = archive(http, **days("2024-06-01", "2024-06-01", timezone="auto"))
    assert auto["timezone"] == "GMT" and auto["utc_offset_seconds"] == 0


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (
            days("1939-12-31", "2024-01-01"),
            "Parameter 'start_date' is out of allowed range from 1940-01-01 to 2024-06-15",
        ),
        (
            days("2024-06-01", "2024-06-16"),
            "Parameter 'end_date' is out of allowed range from 1940-01-01 to 2024-06-15",
        ),
        (
            {
                "latitude": "1,2,3",
                "longitude": "1,2,3",
                "start_date": "2024-01-01,2024-01-02",
                "end_date": "2024-01-01,2024-01-02",
            },
            "Parameter 'start_date' and 'end_date' must have the same number of elements as "
            "coordinates",
        ),
        (
            {**BERLIN, "start_date": "2024-01-01"},
            "Both 'start_date' and 'end_date' must be set in the url",
        ),
        (BERLIN, "Both 'start_date' and 'end_date' must be set in the url"),
        (days("2024-01-02", "2024-01-01"), "End-date must be larger or equals than start-date"),
        (
            {"latitude": "91", "longitude": "0", "start_date": "2024-01-01"},
            "Latitude must be in range of -90 to 90°. Given: 91.0.",
        ),
        (
            {"latitude": "0", "longitude": "-180.5"},
            "Longitude must be in range of -180 to 180°. Given: -180.5.",
        ),
        (
            {"latitude": "1,2", "longitude": "1"},
            "Parameter 'latitude' and 'longitude' must have the same number of elements",
        ),
        (days("2024-01-01", "2024-01-01", hourly="temperature_2m,nope"), None),
        (days("2024-01-01", "2024-01-01", timezone="Mars/Olympus"), "Invalid timezone"),
        (days("2024-01-01", "2024-01-01", wind_speed_unit="furlongs"), None),
    ],
)
def test_bad_requests(
    http: httpx.Client, sbx: WeatherSandbox, params: dict[str, str], reason: str | None
) -> None:
    got = error(http, **params)
    if reason is not None:
        assert got == reason
    else:
        assert "invalid String value" in got
    assert sbx.usage()["minutely"] == 0  # invalid requests cost nothing


def test_too_many_locations(http: httpx.Client, sbx: WeatherSandbox) -> None:
    coords = ",".join(["1.0"] * 1001)
    got = error(
        http, latitude=coords, longitude=coords, start_date="2024-01-01", end_date="2024-01-01"
    )
    assert got == "Only up to 1000 locations can be requested at once"


# -- weights and rate limits -------------------------------------------------------------------
def test_request_weight_formula() -> None:
    assert request_weight(7, [14]) == 1.0
    assert request_weight(15, [28]) == 3.0
    assert math.isclose(request_weight(7, [365]), 18.25)
    assert request_weight(3, [1, 1, 1]) == 3.0
    assert request_weight(0, [100]) == 1.0
    assert request_weight(20, [1]) == 2.0


def test_usage_counts_weights_of_served_requests(http: httpx.Client, sbx: WeatherSandbox) -> None:
    archive(http, **days("2024-01-01", "2024-01-28", hourly=",".join(VARIABLES[:15])))
    archive(
        http, latitude="1,2,3", longitude="1,2,3", start_date="2024-01-01", end_date="2024-01-01"
    )
    usage = sbx.usage()
    assert usage["minutely"] == usage["hourly"] == usage["daily"] == 6.0
    assert usage["total_weight"] == 6.0 and usage["locations_served"] == 4
    assert sbx.locations_served == 4
    log = [r for r in sbx.requests if r["kind"] == "archive"]
    assert [(r["locations"], r["days"], r["weight"]) for r in log] == [(1, 28, 3.0), (3, 3, 3.0)]
    sbx.reset_usage()
    assert sbx.usage()["minutely"] == 0 and sbx.locations_served == 0


def test_minute_window_fills_then_resets(http: httpx.Client, sbx: WeatherSandbox) -> None:
    sbx.set_limits(WeatherLimits(minutely=3, hourly=5, daily=7))
    one = days("2024-01-01", "2024-01-01", hourly="temperature_2m")
    for _ in range(3):
        archive(http, **one)
    minute = "Minutely API request limit exceeded. Please try again in one minute."
    assert error(http, 429, **one) == minute
    assert sbx.usage()["minutely"] == 3  # refused requests cost nothing
    sbx.advance_clock(60)
    archive(http, **one)
    archive(http, **one)
    assert error(http, 429, **one) == (
        "Hourly API request limit exceeded. Please try again in the next hour."
    )
    sbx.advance_clock(3_600)
    archive(http, **one)
    archive(http, **one)
    assert error(http, 429, **one) == "Daily API request limit exceeded. Please try again tomorrow."
    sbx.advance_clock(86_400)
    archive(http, **one)


def test_a_heavy_request_fills_the_window(http: httpx.Client, sbx: WeatherSandbox) -> None:
    sbx.set_limits(WeatherLimits(minutely=10))
    archive(http, **days("2023-01-01", "2023-12-31", hourly="temperature_2m"))  # weight 2.6
    assert math.isclose(sbx.usage()["minutely"], 365 / 140)
    archive(http, **days("2023-01-01", "2023-03-31", hourly=ALL))  # weight 1.5 * 90 / 14
    assert error(http, 429, **days("2023-01-01", "2023-01-01")).startswith("Minutely")


# -- faults ------------------------------------------------------------------------------------
def test_5xx_cycle(http: httpx.Client, sbx: WeatherSandbox) -> None:
    sbx.set_faults(error_5xx_next=3)
    one = days("2024-01-01", "2024-01-01", hourly="temperature_2m")
    first = http.get(ARCHIVE, params=one)
    assert first.status_code == 500
    assert first.json() == {"error": True, "reason": "Internal Server Error"}
    for status in (502, 503):
        resp = http.get(ARCHIVE, params=one)
        assert resp.status_code == status
        assert resp.headers["content-type"] == "text/html" and "<html>" in resp.text
    archive(http, **one)
    assert sbx.usage()["total_weight"] == 1.0  # only the served one
    assert [r["fault"] for r in sbx.requests] == ["5xx", "5xx", "5xx", None]


def test_network_faults(http: httpx.Client, sbx: WeatherSandbox) -> None:
    one = days("2024-01-01", "2024-01-03", hourly=ALL)
    sbx.set_faults(drop_connection_next=1)
    with pytest.raises(httpx.TransportError):
        http.get(ARCHIVE, params=one)
    sbx.set_faults(truncate_body_next=1)
    with pytest.raises(httpx.TransportError):
        http.get(ARCHIVE, params=one)
    sbx.set_faults(malformed_next=1)
    resp = http.get(ARCHIVE, params=one)
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        resp.json()
    archive(http, **one)
    assert [r["fault"] for r in sbx.requests] == ["drop", "truncate", "malformed", None]


def test_outage_and_forced_rate_limits(http: httpx.Client, sbx: WeatherSandbox) -> None:
    one = days("2024-01-01", "2024-01-01")
    sbx.set_faults(outage=True)
    for _ in range(3):
        resp = http.get(ARCHIVE, params=one)
        assert resp.status_code == 503 and "<html>" in resp.text
    sbx.clear_faults()
    archive(http, **one)
    sbx.set_faults(rate_limit_next=2)
    assert error(http, 429, **one).startswith("Minutely API request limit exceeded")
    assert error(http, 429, **one).startswith("Minutely API request limit exceeded")
    archive(http, **one)
    assert sbx.faults.rate_limit_next == 0
    with pytest.raises(SandboxError):
        sbx.set_faults(nope=1)
    with pytest.raises(SandboxError):
        sbx.set_faults(error_5xx_rate=2)


def test_latency(http: httpx.Client, sbx: WeatherSandbox) -> None:
    sbx.set_faults(latency_seconds=0.2)
    resp = http.get(ARCHIVE, params=days("2024-01-01", "2024-01-01"))
    assert resp.status_code == 200 and resp.elapsed.total_seconds() >= 0.19


# -- physics -----------------------------------------------------------------------------------
def test_weather_codes_agree_with_the_other_values(http: httpx.Client) -> None:
    body = archive(
        http,
        latitude="64.84,45.07,-1.29",
        longitude="-147.72,7.69,36.82",
        start_date="2024-01-01",
        end_date="2024-02-29",
        hourly="temperature_2m,relative_humidity_2m,precipitation,rain,snowfall,weather_code,"
        "cloud_cover,dew_point_2m,apparent_temperature,wind_speed_10m",
        wind_speed_unit="ms",
    )
    codes: set[int] = set()
    for loc in body:
        h = loc["hourly"]
        for i, code in enumerate(h["weather_code"]):
            t, rh, p = h["temperature_2m"][i], h["relative_humidity_2m"][i], h["precipitation"][i]
            codes.add(code)
            if code in SNOW_CODES:
                assert t < 1 and p > 0 and h["snowfall"][i] > 0 and h["rain"][i] == 0
            elif code in (45, 48):
                assert rh > 95 and p == 0
            elif code <= 3:
                assert p == 0
            else:
                assert p > 0 and h["rain"][i] == p and t >= 1
            if p > 0:
                assert code not in (0, 1, 2, 3, 45, 48)
            # Magnus dew point and BoM apparent temperature from the served values.
            a, b = 17.625, 243.04
            gamma = math.log(rh / 100) + a * t / (b + t)
            assert abs(h["dew_point_2m"][i] - b * gamma / (a - gamma)) <= 0.11
            e = rh / 100 * 6.105 * math.exp(17.27 * t / (237.7 + t))
            at = t + 0.33 * e - 0.70 * h["wind_speed_10m"][i] - 4.0
            assert abs(h["apparent_temperature"][i] - at) <= 0.11
    assert codes & SNOW_CODES and codes & {61, 63, 65, 80, 81, 82} and codes & {0, 1, 2, 3}


def test_seasons_and_hemispheres(sbx: WeatherSandbox) -> None:
    def mean(lat: float, month: int) -> float:
        start = datetime(2023, month, 1, tzinfo=UTC).timestamp()
        values = [sbx.weather_at(lat, 10, start + 3_600 * h)["temperature_2m"] for h in range(720)]
        return sum(values) / len(values)

    assert mean(50, 7) > mean(50, 1) + 10
    assert mean(-50, 1) > mean(-50, 7) + 10


# -- OpenWeatherMap timemachine ----------------------------------------------------------------
def test_owm_timemachine_units(http: httpx.Client, sbx: WeatherSandbox) -> None:
    dt = int(datetime(2024, 5, 1, 13, 20, tzinfo=UTC).timestamp())
    base = {"lat": "52.52", "lon": "13.41", "dt": str(dt), "appid": OWM_KEY}
    truth = sbx.weather_at(52.52, 13.41, dt)
    standard = http.get(OWM, params=base).json()
    metric = http.get(OWM, params={**base, "units": "metric"}).json()
    imperial = http.get(OWM, params={**base, "units": "imperial"}).json()
    assert standard["timezone"] == "UTC" and standard["timezone_offset"] == 0
    assert (standard["lat"], standard["lon"]) == (52.52, 13.41)
    s, m, i = standard["data"][0], metric["data"][0], imperial["data"][0]
    assert s["dt"] == dt - dt % 3_600
    assert math.isclose(s["temp"], truth["temperature_2m"] + 273.15, abs_tol=0.01)
    assert m["temp"] == truth["temperature_2m"]
    assert math.isclose(i["temp"], truth["temperature_2m"] * 1.8 + 32, abs_tol=0.01)
    assert m["wind_speed"] == s["wind_speed"] == truth["wind_speed_10m"]
    assert math.isclose(i["wind_speed"], truth["wind_speed_10m"] * 2.23694, abs_tol=0.01)
    assert m["humidity"] == truth["relative_humidity_2m"]
    assert m["clouds"] == truth["cloud_cover"] and m["wind_deg"] == truth["wind_direction_10m"]
    assert 0 <= m["visibility"] <= 10_000 and 0 <= m["uvi"] <= 11
    assert set(m["weather"][0]) == {"id", "main", "description", "icon"}
    night = http.get(OWM, params={**base, "dt": str(dt + 10 * 3_600), "units": "metric"}).json()
    assert night["data"][0]["uvi"] == 0 and night["data"][0]["weather"][0]["icon"].endswith("n")


def test_owm_errors_and_limit(http: httpx.Client, sbx: WeatherSandbox) -> None:
    base = {"lat": "10", "lon": "10", "dt": "1700000000", "appid": OWM_KEY}
    unauthorized = {
        "cod": 401,
        "message": "Invalid API key. Please see https://openweathermap.org/faq#error401 for more "
        "info.",
    }
    resp = http.get(OWM, params={**base, "appid": "wrong"})
    assert resp.status_code == 401 and resp.json() == unauthorized
    no_key = {k: v for k, v in base.items() if k != "appid"}
    assert http.get(OWM, params=no_key).status_code == 401
    resp = http.get(OWM, params={**base, "lat": "91"})
    assert resp.status_code == 400 and resp.json() == {"cod": "400", "message": "wrong latitude"}
    resp = http.get(OWM, params={**base, "lon": "x"})
    assert resp.json() == {"cod": "400", "message": "wrong longitude"}
    sbx.owm_per_minute = 4
    assert http.get(OWM, params=base).status_code == 200
    assert http.get(OWM, params=base).status_code == 200
    resp = http.get(OWM, params=base)
    assert resp.status_code == 429 and resp.json()["cod"] == 429
    assert "exceeding of requests limitation" in resp.json()["message"]
    sbx.advance_clock(60)
    assert http.get(OWM, params=base).status_code == 200
    assert sbx.request_count("owm") == 8 and sbx.request_count("archive") == 0
    assert sbx.usage()["minutely"] == 0  # OWM calls do not use Open-Meteo's quota


# -- control API and clock ---------------------------------------------------------------------
def test_control_api(http: httpx.Client, sbx: WeatherSandbox) -> None:
    assert http.get("/_weather/faults").json()["outage"] is False
    resp = http.patch("/_weather/faults", json={"error_5xx_next": 2, "outage": True})
    assert resp.status_code == 200 and resp.json()["error_5xx_next"] == 2
    assert sbx.faults.outage is True
    assert http.patch("/_weather/faults", json={"bogus": 1}).status_code == 400
    assert http.delete("/_weather/faults").json()["error_5xx_next"] == 0
    assert http.get("/_weather/limits").json() == {
        "minutely": 600,
        "hourly": 5_000,
        "daily": 10_000,
        "owm_per_minute": 60,
        "owm_daily": 1000,
    }
    limits = http.put("/_weather/limits", json={"minutely": 2, "owm_daily": 5}).json()
    assert limits["minutely"] == 2 and limits["owm_daily"] == 5 and sbx.limits.minutely == 2
    archive(http, **days("2024-01-01", "2024-01-01"))
    usage = http.get("/_weather/usage").json()
    assert usage["minutely"] == 1 and usage["limit_minutely"] == 2
    assert http.delete("/_weather/usage").json()["minutely"] == 0
    assert http.get("/_weather/clock").json()["now"] == pytest.approx(NOW, abs=5)
    moved = http.post("/_weather/clock", json={"epoch": NOW + 1_000, "advance": 10}).json()
    assert moved["now"] == pytest.approx(NOW + 1_010, abs=5)
    log = http.get("/_weather/requests").json()
    assert [r["kind"] for r in log].count("archive") == 1
    assert {"time", "kind", "method", "path", "status", "weight", "fault"} <= set(log[0])
    assert http.delete("/_weather/requests").json() == {"cleared": True}
    assert sbx.request_count(None) == 1  # the DELETE itself
    missing = http.get("/_weather/nothing")
    assert missing.status_code == 404 and missing.json() == {"error": True, "reason": "Not Found"}
    other = http.get("/v1/forecast")
    assert other.status_code == 404 and other.json() == {"error": True, "reason": "Not Found"}
    assert sbx.request_count("other") == 1


def test_shared_clock() -> None:
    now = [NOW]
    sandbox = WeatherSandbox(clock=lambda: now[0])
    assert sandbox.now() == NOW
    now[0] += 86_400
    assert sandbox.now() == NOW + 86_400
    with pytest.raises(SandboxError):
        sandbox.advance_clock(1)
    with pytest.raises(SandboxError):
        sandbox.set_clock(0)
    resp = sandbox.handle("POST", "/_weather/clock", "", {}, b'{"advance": 5}')
    assert resp.status == 400
    # The allowed date range follows the shared clock.
    resp = sandbox.handle(
        "GET", ARCHIVE, "latitude=1&longitude=1&start_date=2024-06-16&end_date=2024-06-16", {}, b""
    )
    assert resp.status == 200
