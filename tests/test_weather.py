"""Weather and place enrichment: providers against the Open-Meteo sandbox over real HTTP, the
shared cache in SQLite and PostgreSQL, batching, limits, outages and the pending state."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from cryptography.fernet import Fernet
from sync_assets_sandbox import SandboxServer, StravaSandbox, WeatherLimits, request_weight

from sync_assets.core.clients.weather import (
    OPEN_METEO_VARIABLES,
    OpenMeteoProvider,
    OpenWeatherMapProvider,
    WeightBudget,
    cheapest_ranges,
    open_meteo_weight,
    to_celsius,
    to_mps,
)
from sync_assets.core.enrichment.activities import enrich_tables
from sync_assets.core.enrichment.geocoding import reverse_geocode
from sync_assets.core.enrichment.weather import cell_of, hour_of, resolve_weather
from sync_assets.core.enrichment.wmo import WMO_CODES, condition
from sync_assets.core.errors import ErrorType, RateLimitError, SyncError
from sync_assets.core.models import ACTIVITY_SCHEMA
from sync_assets.core.storage import Store, close_stores, open_store

from .helpers import add_users

# Home bases exactly on cell centres: every activity within 0.04° stays in its home's cell.
HOMES = [(48.9, 2.3), (40.7, -74.0), (-33.9, 151.2)]
NOW = datetime.now(UTC)
YEAR_START = datetime(NOW.year - 2, 1, 1, tzinfo=UTC)


def no_sleep(_: float) -> None:
    pass


def activities(n: int, seed: int = 1, start: datetime = YEAR_START, days: int = 365) -> list:
    """(lat, lng, start) of `n` activities around HOMES over `days` days."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        lat, lng = rng.choice(HOMES)
        moment = start + timedelta(days=rng.randrange(days), hours=rng.uniform(5, 20))
        out.append((lat + rng.uniform(-0.04, 0.04), lng + rng.uniform(-0.04, 0.04), moment))
    return out


def keys_of(acts: list) -> set:
    return {(cell_of(lat, lng), hour_of(moment)) for lat, lng, moment in acts}


@pytest.fixture
def provider(server: SandboxServer) -> Iterator[OpenMeteoProvider]:
    p = OpenMeteoProvider(server.weather_url, backoff=(0.01, 0.05), sleep=no_sleep)
    yield p
    p.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path: Path, monkeypatch) -> Iterator[Store]:
    if request.param == "sqlite":
        yield open_store(None, tmp_path / "data")
    else:
        monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
        yield open_store(request.getfixturevalue("pg_url"), tmp_path / "data")
    close_stores()


# -- pure parts ---------------------------------------------------------------------------------
def test_wmo_codes_map_to_open_meteo_condition_texts() -> None:
    assert condition(0) == "Clear sky"
    assert condition(3) == "Overcast"
    assert condition(45.0) == "Fog"
    assert condition(63) == "Moderate rain"
    assert condition(75) == "Heavy snow fall"
    assert condition(95) == "Thunderstorm"
    assert condition(99) == "Thunderstorm with heavy hail"
    assert condition(None) is None
    assert condition(42) == "Unknown (code 42)"
    assert len(WMO_CODES) == 28


def test_unit_conversions() -> None:
    assert to_mps(36.0, "km/h") == 10.0
    assert to_mps(10.0, "m/s") == 10.0
    assert to_mps(22.3694, "mp/h") == pytest.approx(10.0, abs=0.01)
    assert to_mps(19.4384, "kn") == pytest.approx(10.0, abs=0.01)
    assert to_mps(None, "km/h") is None
    assert to_celsius(212.0, "°F") == 100.0
    assert to_celsius(273.15, "K") == 0.0
    assert to_celsius(21.5, "°C") == 21.5
    with pytest.raises(ValueError, match="unknown wind speed unit"):
        to_mps(1.0, "furlongs/fortnight")
    with pytest.raises(ValueError, match="unknown temperature unit"):
        to_celsius(1.0, "°Ré")


def test_the_weight_formula_is_open_meteos() -> None:
    n = len(OPEN_METEO_VARIABLES)
    for days in (1, 14, 20, 28, 365):
        assert open_meteo_weight(n, days) == request_weight(n, [days])
    assert open_meteo_weight(15, 28) == 3.0
    assert open_meteo_weight(7, 365) == pytest.approx(18.25)


def _weight(ranges: list, n: int) -> float:
    return sum(open_meteo_weight(n, (end - start).days + 1) for start, end in ranges)


def _least_weight_by_brute_force(days: list, n: int) -> float:
    """Every way to cut the sorted days into contiguous groups, each fetched as one range."""
    days = sorted(set(days))
    best = math.inf
    for cuts in range(1 << (len(days) - 1)):
        total, first = 0.0, days[0]
        for i in range(1, len(days) + 1):
            if i == len(days) or cuts >> (i - 1) & 1:
                total += open_meteo_weight(n, (days[i - 1] - first).days + 1)
                if i < len(days):
                    first = days[i]
        best = min(best, total)
    return best


def test_the_planned_ranges_cost_the_least_weight_that_covers_the_days() -> None:
    d = datetime(2024, 1, 1).date()
    n = len(OPEN_METEO_VARIABLES)
    days = [d, d + timedelta(days=1), d + timedelta(days=10), d + timedelta(days=200)]
    # Days 0..10 cost one call together (as much as day 0 alone); day 200 is far: its own.
    assert cheapest_ranges(days, n, max_days=2000) == [
        (d, d + timedelta(days=10)),
        (d + timedelta(days=200),) * 2,
    ]
    # Every other day of a year: one range would cost 18.25 calls; skipping a day between
    # ranges of 20 days or more saves 0.05 each.
    dense = [d + timedelta(days=i) for i in range(0, 365, 2)]
    ranges = cheapest_ranges(dense, n, max_days=2000)
    assert _weight(ranges, n) < open_meteo_weight(n, 365) and len(ranges) > 1
    assert all(any(a <= day <= b for a, b in ranges) for day in dense)
    assert all(len(cheapest_ranges(dense, n, max_days=m)) >= 365 // m for m in (30, 100))
    assert all((b - a).days < 100 for a, b in cheapest_ranges(dense, n, max_days=100))
    # Exact: the least weight over every way of cutting the days into ranges.
    rng = random.Random(7)
    for trial in range(300):
        k = rng.randint(1, 11)
        spread = rng.choice((15, 40, 120, 400))
        some = [d + timedelta(days=rng.randrange(spread)) for _ in range(k)]
        variables = rng.choice((n, 3, 10, 15))
        ranges = cheapest_ranges(some, variables, max_days=100_000)
        assert all(any(a <= day <= b for a, b in ranges) for day in some), trial
        assert all(a <= b for a, b in ranges) and ranges == sorted(ranges)
        assert math.isclose(
            _weight(ranges, variables), _least_weight_by_brute_force(some, variables)
        )
    assert cheapest_ranges([], n, max_days=10) == []


def test_offline_reverse_geocoding() -> None:
    paris, sydney, ocean, none = reverse_geocode(
        [(48.8566, 2.3522), (-33.87, 151.21), (0.0, -30.0), None]
    )
    assert (paris.city, paris.country, paris.status) == ("Paris", "France", "enriched")
    assert paris.state == "Île-de-France"
    assert sydney.state == "New South Wales" and sydney.country == "Australia"
    assert ocean.status == "no_place" and ocean.city is None and ocean.country is None
    assert none.status == "no_location"


def test_cells_and_hours() -> None:
    assert cell_of(48.8566, 2.3522) == (48.9, 2.4)
    assert cell_of(-33.87, 151.21) == (-33.9, 151.2)
    assert cell_of(40.74, -73.96, 0.25) == (40.75, -74.0)
    assert hour_of(datetime(2024, 5, 1, 7, 50, tzinfo=UTC)) == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert hour_of(datetime(2024, 5, 1, 7, 29, tzinfo=UTC)) == datetime(2024, 5, 1, 7, tzinfo=UTC)


def test_weight_budget_waits_for_short_windows_and_refuses_long_ones() -> None:
    budget = WeightBudget("test:budget", minutely=3, hourly=0, daily=0)
    slept: list[float] = []
    budget.acquire(1.0, max_wait_seconds=5)
    budget.acquire(1.5, max_wait_seconds=5)
    with pytest.raises(RateLimitError) as info:
        budget.acquire(1.0, max_wait_seconds=1, sleep=slept.append)
    assert info.value.retryable and info.value.retry_after > datetime.now(UTC)
    day = WeightBudget("test:day", minutely=0, hourly=0, daily=2)
    day.acquire(2.0, max_wait_seconds=1)
    with pytest.raises(RateLimitError):
        day.acquire(0.1, max_wait_seconds=60, sleep=slept.append)
    assert slept == []  # a wait longer than allowed is refused at once, not slept on


# -- providers against the sandbox -----------------------------------------------------------
def test_open_meteo_values_and_units_match_the_archive(server, provider, store) -> None:
    acts = activities(40, seed=3)
    found, statuses, report = resolve_weather(keys_of(acts), provider, store)
    assert statuses == {} and report.requests_failed == 0
    for (cell, hour), w in list(found.items())[:25]:
        truth = server.weather.weather_at(cell[0], cell[1], hour.timestamp())
        assert w.temperature_celsius == truth["temperature_2m"]
        assert w.feels_like_celsius == truth["apparent_temperature"]
        assert w.humidity_percent == truth["relative_humidity_2m"]
        assert w.pressure_hpa == truth["pressure_msl"]
        assert w.wind_speed_mps == truth["wind_speed_10m"]  # asked in m/s: no conversion loss
        assert w.wind_direction_degrees == truth["wind_direction_10m"]
        assert w.weather_condition == WMO_CODES[truth["weather_code"]]
        assert w.visibility_meters is None and w.uv_index is None  # not in the archive
    # The cache holds them now, with the same values.
    assert store.weather_lookup("open-meteo", set(found)) == found


def test_requests_depend_on_places_and_dates_not_on_activities(server, store) -> None:
    """30, 300 and 3,000 activities over the same 3 places and a year (each set in a year of
    its own, so that every one starts from an empty cache): the same single request."""
    counts, weights = {}, {}
    for i, n in enumerate((30, 300, 3000)):
        p = OpenMeteoProvider(server.weather_url, sleep=no_sleep)
        start = YEAR_START.replace(year=YEAR_START.year - i)
        acts = activities(n, seed=n, start=start, days=365)
        before = server.weather.request_count("archive")
        weight_before = server.weather.usage()["total_weight"]
        found, statuses, report = resolve_weather(keys_of(acts), p, store, now=NOW)
        counts[n] = server.weather.request_count("archive") - before
        weights[n] = server.weather.usage()["total_weight"] - weight_before
        assert statuses == {} and len(found) == len(keys_of(acts))
        assert counts[n] == report.requests_planned == p.stats.http_requests
        p.close()
    assert counts == {30: 1, 300: 1, 3000: 1}
    # What Open-Meteo charges grows with the days covered, not with the activities: at most
    # a year per cell (3 x 18.25 calls), against one call per activity for the seed's way.
    year = 3 * open_meteo_weight(len(OPEN_METEO_VARIABLES), 365)
    assert 0.95 * year <= weights[3000] <= year
    assert weights[30] <= 30 and weights[300] <= weights[3000]


def test_a_second_run_and_a_second_user_at_the_same_place_make_no_request(
    server, provider, store
) -> None:
    first = activities(300, seed=11)
    resolve_weather(keys_of(first), provider, store, now=NOW)
    served = server.weather.request_count("archive")
    assert served >= 1
    # The same activities again (a re-run): all from the cache.
    found, statuses, report = resolve_weather(keys_of(first), provider, store, now=NOW)
    assert report.cache_hits == len(keys_of(first)) and report.requests_planned == 0
    # Another athlete (a club mate): the same places and days, other hours and start points.
    # Still all cached, since a request caches every hour of the days it covers.
    rng = random.Random(99)
    other = [
        (
            lat + rng.uniform(-0.004, 0.004),
            lng + rng.uniform(-0.004, 0.004),
            moment.replace(hour=rng.randrange(0, 23), minute=rng.randrange(60)),
        )
        for lat, lng, moment in first
    ]
    assert keys_of(other) != keys_of(first)
    _, statuses, report = resolve_weather(keys_of(other), provider, store, now=NOW)
    assert statuses == {} and report.requests_planned == 0
    assert server.weather.request_count("archive") == served


def test_recent_hours_are_pending_then_filled_once_the_archive_has_them(
    server, provider, store
) -> None:
    now = datetime.fromtimestamp(server.sandbox.now(), UTC)
    recent = [(48.9, 2.3, now - timedelta(days=d, hours=3)) for d in (1, 2, 3)]
    older = [(48.9, 2.3, now - timedelta(days=20))]
    keys = keys_of(recent + older)
    found, statuses, report = resolve_weather(keys, provider, store, now=now)
    assert report.pending == 3 and len(found) == 1
    assert {s.status for s in statuses.values()} == {"pending"}
    assert all(s.retry_after > now and s.retryable for s in statuses.values())
    # Nothing pending was cached: six days later the archive has published them.
    server.sandbox.advance_clock(6 * 86_400)
    later = now + timedelta(days=6)
    found, statuses, report = resolve_weather(keys, provider, store, now=later)
    assert statuses == {} and len(found) == 4 and report.cache_hits == 1


def test_an_outage_fails_softly_and_opens_the_breaker(server, store) -> None:
    p = OpenMeteoProvider(
        server.weather_url,
        max_locations=1,  # one request per cell: several requests to fail
        backoff=(0.01, 0.02),
        max_retries=1,
        breaker_fail_max=2,
        sleep=no_sleep,
    )
    server.weather.set_faults(outage=True)
    keys = keys_of(activities(60, seed=5))
    found, statuses, report = resolve_weather(keys, p, store, now=NOW)
    assert found == {} and len(statuses) == len(keys)
    assert {s.status for s in statuses.values()} == {"failed"}
    assert all(s.retryable for s in statuses.values())
    assert report.requests_failed == report.requests_planned > 3
    # Two requests (with one retry each) reached the sandbox; the breaker then opened and
    # every other request failed at once, without a call.
    assert server.weather.request_count("archive") == 4
    assert "circuit breaker is open" in report.errors[-1]
    p.breaker.close()  # breakers are per API URL and process: leave none open behind
    p.close()


def test_429_minutely_is_waited_out_and_hourly_is_a_retryable_failure(server, store) -> None:
    slept: list[float] = []
    p = OpenMeteoProvider(server.weather_url, sleep=slept.append, max_wait_seconds=120)
    server.weather.set_faults(rate_limit_next=1)
    found, statuses, _ = resolve_weather(keys_of(activities(10, seed=2)), p, store, now=NOW)
    assert statuses == {} and p.stats.http_429 == 1
    assert len(slept) == 1 and 0 < slept[0] <= 61
    p.close()
    # Past the hourly limit: the run does not wait an hour; the activities are marked.
    server.weather.set_limits(WeatherLimits(minutely=600, hourly=1, daily=10_000))
    server.weather.reset_usage()
    p = OpenMeteoProvider(server.weather_url, max_locations=1, sleep=no_sleep)
    keys = keys_of(activities(30, seed=21, start=YEAR_START + timedelta(days=400)))
    found, statuses, report = resolve_weather(keys, p, store, now=NOW)
    assert found and statuses  # the first request was served, the others refused
    assert {s.status for s in statuses.values()} == {"failed"}
    assert all(s.reason.startswith("RATE_LIMIT") and s.retry_after for s in statuses.values())
    assert all(s.retry_after > datetime.now(UTC) + timedelta(minutes=30) for s in statuses.values())
    assert slept == [slept[0]]  # an hour is not waited for inside a run
    p.close()


def test_limits_of_the_provider_are_respected_by_the_budget(server, store) -> None:
    # A budget of 3 calls a minute (the sandbox allows 600): the 4th call's weight must wait.
    p = OpenMeteoProvider(
        server.weather_url, minutely=3, max_locations=1, max_wait_seconds=0.5, sleep=no_sleep
    )
    keys = keys_of(activities(80, seed=8))  # 3 cells of one year: weight 18.25 each
    _, statuses, report = resolve_weather(keys, p, store, now=NOW)
    # Each request fits the minute's budget (weight capped at half of it): 3 cells need more
    # requests than the budget allows in a minute, so the rest fail as rate-limited.
    assert report.requests_planned > 3
    assert p.stats.http_requests == 3 == server.weather.request_count("archive")
    assert any(s.reason.startswith("RATE_LIMIT") for s in statuses.values())
    p.close()


def test_openweathermap_gives_visibility_and_uv_and_keeps_its_key_secret(
    server, store, caplog
) -> None:
    key = "owm-secret-" + "x" * 20
    sandbox_key = server.weather.owm_api_key
    p = OpenWeatherMapProvider(sandbox_key, server.openweathermap_url, sleep=no_sleep)
    acts = activities(5, seed=4)
    found, statuses, report = resolve_weather(keys_of(acts), p, store, now=NOW)
    assert statuses == {} and report.requests_planned == len(keys_of(acts))
    for (cell, hour), w in found.items():
        truth = server.weather.weather_at(cell[0], cell[1], hour.timestamp())
        assert w.temperature_celsius == pytest.approx(truth["temperature_2m"], abs=0.11)
        assert w.visibility_meters == truth["visibility"]
        assert w.uv_index == truth["uvi"]
        assert w.weather_condition
    assert store.weather_lookup("openweathermap", set(found)) == found
    assert store.weather_lookup("open-meteo", set(found)) == {}  # providers never mix
    # A refused key: a configuration error, not retried, and the key is nowhere.
    bad = OpenWeatherMapProvider(key, server.openweathermap_url, sleep=no_sleep)
    with caplog.at_level(logging.DEBUG):
        _, statuses, report = resolve_weather(keys_of(activities(2, seed=40)), bad, store, now=NOW)
    assert {s.retryable for s in statuses.values()} == {False}
    assert all("CONFIGURATION" in s.reason for s in statuses.values())
    assert bad.stats.retries == 0
    text = caplog.text + " ".join(report.errors) + " ".join(s.reason for s in statuses.values())
    assert key not in text and sandbox_key not in text
    with pytest.raises(SyncError) as info:
        OpenWeatherMapProvider("", server.openweathermap_url)
    assert info.value.type == ErrorType.CONFIGURATION
    p.close()
    bad.close()


def test_enriched_rows_carry_place_weather_and_a_reason_when_missing(
    server, provider, store
) -> None:
    now = datetime.fromtimestamp(server.sandbox.now(), UTC)
    base = {c.name: None for c in ACTIVITY_SCHEMA}
    rows = [
        base
        | {
            "strava_id": 1,
            "start_date": now - timedelta(days=40),
            "start_lat": 48.86,
            "start_lng": 2.35,
        },
        base
        | {
            "strava_id": 2,
            "start_date": now - timedelta(days=1),
            "start_lat": 48.86,
            "start_lng": 2.35,
        },
        base | {"strava_id": 3, "start_date": now - timedelta(days=40)},  # indoor: no coordinates
    ]
    table = pa.Table.from_pylist(rows, schema=ACTIVITY_SCHEMA)
    out, report = enrich_tables({"k": table}, provider, store, now=now)
    got = {r["strava_id"]: r for r in out["k"].to_pylist()}
    assert got[1]["city"] == "Paris" and got[1]["temperature_celsius"] is not None
    assert '"weather":true' in got[1]["enrichment_status"]
    assert got[2]["city"] == "Paris" and got[2]["temperature_celsius"] is None
    assert '"weather_status":"pending"' in got[2]["enrichment_status"]
    assert (
        got[3]["city"] is None and '"weather_status":"no_location"' in got[3]["enrichment_status"]
    )
    assert (report.weather_enriched, report.weather_pending, report.no_location) == (1, 1, 1)


def test_the_cache_is_shared_across_stores_of_one_database(server, pg_url, tmp_path, monkeypatch):
    """Two processes' stores (two pools) on one Supabase database see each other's hours."""
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    from sync_assets.core.storage.crypto import TokenCipher, keys_from_env
    from sync_assets.core.storage.postgres import PostgresStore

    a = PostgresStore(pg_url, TokenCipher(keys_from_env()))
    b = PostgresStore(pg_url, TokenCipher(keys_from_env()))
    a.migrate()
    add_users(pg_url)
    p = OpenMeteoProvider(server.weather_url, sleep=no_sleep)
    keys = keys_of(activities(50, seed=12))
    resolve_weather(keys, p, a, now=NOW)
    _, _, report = resolve_weather(keys, p, b, now=NOW)
    assert report.cache_hits == len(keys) and report.requests_planned == 0
    a.close()
    b.close()
    p.close()


def test_a_sandbox_of_its_own_serves_weather_on_the_same_port() -> None:
    with SandboxServer(StravaSandbox(seed=5)) as srv:
        p = OpenMeteoProvider(srv.weather_url, sleep=no_sleep)
        plan = p.plan({(51.5, -0.1): {datetime(2020, 6, 1, 9, tzinfo=UTC)}}, NOW.date())
        got = p.fetch(plan[0])
        assert len(got) == 24 and all(v is not None for v in got.values())
        p.close()


def test_concurrent_runs_needing_the_same_cells_fetch_them_once(
    server, pg_url, tmp_path, monkeypatch
) -> None:
    """Two runs (two pools, as two processes would have) start together on the same places:
    one fetches while the other waits on the cell locks, then reads the cache."""
    import threading

    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    from sync_assets.core.storage.crypto import TokenCipher, keys_from_env
    from sync_assets.core.storage.postgres import PostgresStore

    stores = [PostgresStore(pg_url, TokenCipher(keys_from_env())) for _ in range(2)]
    stores[0].migrate()
    server.weather.set_faults(latency_seconds=0.5)  # the fetch takes a while
    keys = keys_of(activities(120, seed=13))
    barrier = threading.Barrier(2)
    reports = []

    def run(store: Store) -> None:
        p = OpenMeteoProvider(server.weather_url, sleep=no_sleep)
        barrier.wait()
        found, statuses, report = resolve_weather(keys, p, store, now=NOW)
        assert statuses == {} and len(found) == len(keys)
        reports.append(report)
        p.close()

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(reports) == 2
    assert sorted(r.requests_planned for r in reports) == [0, 1]
    assert server.weather.request_count("archive") == 1
    for s in stores:
        s.close()
