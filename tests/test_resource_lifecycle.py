"""Stores and breakers live as long as a Dagster execution: a run (or a sensor tick) opens the
store it uses and closes it at the end; applications open theirs and close it."""

from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    SensorEvaluationContext,
    asset,
    build_sensor_context,
    materialize,
    sensor,
)

import sync_assets.core.storage as storage
from sync_assets.resources import StravaResource, SupabaseResource, WeatherResource


def still_open(opened: list[storage.Store]) -> list[storage.Store]:
    """The stores of `opened` that nobody closed yet."""
    return [s for s in opened if id(s) in storage._open]


@pytest.fixture
def opened(monkeypatch) -> list[storage.Store]:
    """Every store `open_store` opens during the test."""
    stores: list[storage.Store] = []
    real = storage.open_store

    def counting(*args: object, **kwargs: object) -> storage.Store:
        store = real(*args, **kwargs)
        stores.append(store)
        return store

    monkeypatch.setattr(storage, "open_store", counting)
    yield stores
    storage.close_stores()


def test_a_run_opens_one_store_and_closes_it(opened, tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    @asset
    def probe(supabase: SupabaseResource, strava: StravaResource, weather: WeatherResource):
        seen["store"], seen["strava_store"] = supabase.store(), strava.supabase.store()
        seen["breakers"] = (weather.client().breaker, weather.client().breaker)

    supabase = SupabaseResource(data_dir=str(tmp_path))
    resources = {
        "supabase": supabase,
        "strava": StravaResource(client_id="1", client_secret="x", supabase=supabase),
        "weather": WeatherResource(),
    }
    for _ in range(2):
        assert materialize([probe], resources=resources, instance=DagsterInstance.ephemeral())
    first, second = opened
    # One store per run, shared by the run's copies of the resource (the top-level one and
    # StravaResource's), closed when the run ends; the next run has its own.
    assert seen["store"] is seen["strava_store"] is second and first is not second
    assert still_open(opened) == []
    one, other = seen["breakers"]
    assert one is other  # every provider of a run goes through the run's breaker
    assert supabase._store is None  # the object given to Dagster opened nothing itself


def test_a_sensor_tick_closes_its_store(opened, tmp_path: Path) -> None:
    @sensor()
    def probe(context: SensorEvaluationContext, supabase: SupabaseResource):
        supabase.store().recent_sessions(None, 1)

    with build_sensor_context(
        resources={"supabase": SupabaseResource(data_dir=str(tmp_path))}
    ) as context:
        list(probe(context) or [])
        assert len(opened) == 1 and still_open(opened) == opened
    assert still_open(opened) == []


def test_stores_outside_dagster_are_their_callers(opened, tmp_path: Path) -> None:
    with storage.open_store(None, tmp_path) as one:
        with storage.open_store(None, tmp_path) as other:
            assert one is not other  # no cache: each caller has its own
        assert still_open(opened) == [one]
    assert still_open(opened) == []
    resource = SupabaseResource(data_dir=str(tmp_path))
    assert resource.store() is resource.store()  # opened on first use
    resource.close()
    assert resource._store is None and still_open(opened) == []
    storage.open_store(None, tmp_path)  # left open: close_stores closes it
    storage.close_stores()
    assert still_open(opened) == []
