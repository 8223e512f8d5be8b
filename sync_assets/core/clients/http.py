"""What every HTTP client of the project does with an answer it did not handle itself."""

import time
from collections.abc import Callable
from typing import Any

import httpx

from sync_assets.core.errors import ErrorType, SyncError


def response_json(
    resp: httpx.Response, what: str, describe: Callable[[httpx.Response], str]
) -> Any:
    """The JSON body of a 200 answer; otherwise the classified error: 5xx and unparsable bodies
    are retryable, any other status is not (`describe` condenses the API's error body)."""
    if resp.status_code >= 500:
        raise SyncError(
            ErrorType.SERVER, f"{what} answered {resp.status_code}", status_code=resp.status_code
        )
    if resp.status_code != 200:
        raise SyncError(
            ErrorType.CLIENT,
            f"{what} answered {resp.status_code}: {describe(resp)}",
            retryable=False,
            status_code=resp.status_code,
        )
    try:
        return resp.json()
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        kind = resp.headers.get("content-type", "no content type").split(";")[0].strip()
        raise SyncError(
            ErrorType.INVALID_RESPONSE,
            f"{what} sent a body that is not JSON ({kind}, {len(resp.content)} bytes, "
            f"{type(exc).__name__})",
            status_code=200,
        ) from None


class LatencyStats:
    """Every HTTP attempt's latency (to its response headers, or to its failure), for metrics.

    Filled by `TimedTransport`, so retries, token calls and failed connections all count, and
    no client has to remember to time its requests.
    """

    def __init__(self) -> None:
        self.samples_ms: list[float] = []

    def record(self, ms: float) -> None:
        self.samples_ms.append(ms)

    @property
    def requests(self) -> int:
        return len(self.samples_ms)

    @property
    def total_ms(self) -> float:
        return sum(self.samples_ms)

    @property
    def max_ms(self) -> float:
        return max(self.samples_ms, default=0.0)

    def percentile_ms(self, q: float) -> float | None:
        if not self.samples_ms:
            return None
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class TimedTransport(httpx.BaseTransport):
    """httpx's own transport, timed: every attempt lands in a `LatencyStats`."""

    def __init__(self, stats: LatencyStats, inner: httpx.BaseTransport | None = None) -> None:
        self.stats = stats
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            return self._inner.handle_request(request)
        finally:
            self.stats.record((time.perf_counter() - started) * 1000)

    def close(self) -> None:
        self._inner.close()
