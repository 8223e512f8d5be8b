"""`WeatherResource`: which historical weather provider to use, and how politely."""

import logging
import threading
from typing import Any

import pybreaker
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from sync_assets.core.clients.weather import (
    DEFAULT_CELL_DEGREES,
    OPEN_METEO_ARCHIVE_URL,
    PENDING_DAYS,
    OpenMeteoProvider,
    OpenWeatherMapProvider,
    WaitCallback,
    WeatherProvider,
    new_breaker,
)
from sync_assets.core.errors import ErrorType, SyncError

PROVIDERS = ("open-meteo", "openweathermap")


class WeatherResource(ConfigurableResource):
    """Open-Meteo's archive by default (no key). `openweathermap` uses One Call 3.0
    `timemachine` (key from `EnvVar("OPENWEATHERMAP_API_KEY")`; `api_url` is then its URL),
    which adds visibility and UV index but costs one call per place and hour.
    """

    provider: str = Field(default="open-meteo", description="WEATHER_PROVIDER")
    api_url: str = Field(default=OPEN_METEO_ARCHIVE_URL, description="WEATHER_API_URL")
    api_key: str | None = Field(default=None, description="OPENWEATHERMAP_API_KEY (EnvVar)")
    cell_degrees: float = Field(
        default=DEFAULT_CELL_DEGREES, description="grid of the cache: start points this close share"
    )
    pending_days: int = Field(
        default=PENDING_DAYS, description="hours missing from the archive this recent are pending"
    )
    calls_per_minute: int = Field(default=600, description="provider limit (weighted calls)")
    calls_per_hour: int = 5_000
    calls_per_day: int = 10_000
    max_locations_per_request: int = 100
    max_request_weight: float = Field(default=100.0, description="weighted calls per request")
    max_wait_seconds: float = Field(
        default=90.0, description="longest wait for the budget inside a run; beyond, fail"
    )
    max_retries: int = 3
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 10.0
    timeout_seconds: float = 60.0
    breaker_fail_max: int = Field(default=5, description="failed requests that open the breaker")
    breaker_reset_seconds: float = 60.0

    # The breaker lives as long as an execution of the resource (a run, or a step's process
    # with the multiprocess executor): every provider the execution makes goes through it,
    # and the next execution starts closed. Outside an execution, one per resource object.
    _breaker: pybreaker.CircuitBreaker | None = PrivateAttr(default=None)
    _breaker_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self.breaker()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        with self._breaker_lock:
            self._breaker = None

    def breaker(self) -> pybreaker.CircuitBreaker:
        """The circuit breaker around this resource's weather API."""
        with self._breaker_lock:
            if self._breaker is None:
                self._breaker = new_breaker(
                    self.api_url, self.breaker_fail_max, self.breaker_reset_seconds
                )
            return self._breaker

    def limits(self) -> dict[str, int]:
        """The provider's quota, in weighted calls per window."""
        return {
            "minutely": self.calls_per_minute,
            "hourly": self.calls_per_hour,
            "daily": self.calls_per_day,
        }

    def client(
        self,
        logger: logging.Logger | Any = None,
        on_wait: WaitCallback | None = None,
        max_retries: int | None = None,
    ) -> WeatherProvider:
        """The provider; `on_wait` is told when it starts waiting (its budget, a 429) and
        when the wait is over (the weather step writes it into the sync's session).
        `max_retries`: the run's own (`SyncOptions.max_retries`) instead of the resource's."""
        common: dict[str, Any] = {
            **self.limits(),
            "timeout": self.timeout_seconds,
            "max_retries": self.max_retries if max_retries is None else max_retries,
            "backoff": (self.backoff_base_seconds, self.backoff_max_seconds),
            "max_wait_seconds": self.max_wait_seconds,
            "breaker_fail_max": self.breaker_fail_max,
            "breaker_reset_seconds": self.breaker_reset_seconds,
            "logger": logger,
            "on_wait": on_wait,
            "breaker": self.breaker(),
        }
        if self.provider == "open-meteo":
            return OpenMeteoProvider(
                self.api_url,
                max_locations=self.max_locations_per_request,
                max_request_weight=self.max_request_weight,
                **common,
            )
        if self.provider == "openweathermap":
            return OpenWeatherMapProvider(self.api_key or "", self.api_url, **common)
        raise SyncError(
            ErrorType.CONFIGURATION,
            f"unknown weather provider {self.provider!r}: choose one of {', '.join(PROVIDERS)}",
            retryable=False,
        )
