"""The budget's arithmetic, on a controlled clock (the sandbox tests cover it over HTTP)."""

from datetime import UTC, datetime

import pytest

from sync_assets.core.clients.rate_limit import RateLimitBudget
from sync_assets.core.errors import ErrorType, RateLimitError


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def headers(usage: str, read_usage: str, limit: str = "200,2000", read_limit: str = "100,1000"):
    return {
        "x-ratelimit-limit": limit,
        "x-ratelimit-usage": usage,
        "x-readratelimit-limit": read_limit,
        "x-readratelimit-usage": read_usage,
    }


def test_counts_locally_between_responses_and_waits_for_quarter_hour() -> None:
    clock = Clock(at("2026-03-01 10:14:50"))
    budget = RateLimitBudget(max_wait_seconds=60, clock=clock, sleep=clock.sleep)
    budget.observe(headers("98,500", "98,500"), status_code=200)
    budget.acquire()
    budget.acquire()  # 100th read of the window
    assert budget.usage()["read_usage_15min"] == 100
    budget.acquire()  # must wait until 10:15:00 (+ margin)
    assert len(clock.slept) == 1
    assert 10 <= clock.slept[0] <= 11.5
    assert budget.usage()["read_usage_15min"] == 1


def test_long_wait_raises_retryable_rate_limit_with_retry_after() -> None:
    clock = Clock(at("2026-03-01 10:01:00"))
    budget = RateLimitBudget(max_wait_seconds=60, clock=clock, sleep=clock.sleep)
    budget.observe(headers("100,100", "100,100"), status_code=200)
    with pytest.raises(RateLimitError) as info:
        budget.acquire()
    err = info.value
    assert err.type == ErrorType.RATE_LIMIT and err.retryable
    assert err.retry_after == datetime(2026, 3, 1, 10, 15, 1, tzinfo=UTC)
    assert clock.slept == []


def test_daily_limit_waits_until_midnight_utc() -> None:
    clock = Clock(at("2026-03-01 23:59:58"))
    budget = RateLimitBudget(max_wait_seconds=10, clock=clock, sleep=clock.sleep)
    budget.observe(headers("5,1000", "5,1000"), status_code=200)
    budget.acquire()
    assert clock.slept and clock.slept[0] == pytest.approx(3, abs=0.6)
    assert budget.usage()["read_usage_daily"] == 1


def test_daily_limit_far_from_midnight_is_an_error() -> None:
    clock = Clock(at("2026-03-01 12:00:00"))
    budget = RateLimitBudget(max_wait_seconds=900, clock=clock, sleep=clock.sleep)
    budget.observe(headers("5,2000", "5,1000"), status_code=200)
    with pytest.raises(RateLimitError) as info:
        budget.acquire()
    assert info.value.retry_after == datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC)


def test_429_blocks_until_next_window_even_if_headers_disagree() -> None:
    clock = Clock(at("2026-03-01 10:29:55"))
    budget = RateLimitBudget(max_wait_seconds=60, clock=clock, sleep=clock.sleep)
    budget.observe(headers("3,3", "3,3"), status_code=429)
    budget.acquire()
    assert clock.slept and clock.slept[0] == pytest.approx(6, abs=0.6)


def test_server_date_header_sets_the_clock() -> None:
    clock = Clock(at("2026-03-01 10:00:00"))  # local clock 14 min behind the server
    budget = RateLimitBudget(max_wait_seconds=120, clock=clock, sleep=clock.sleep)
    h = headers("100,100", "100,100")
    h["date"] = "Sun, 01 Mar 2026 10:14:00 GMT"
    budget.observe(h, status_code=200)
    budget.acquire()  # the server's window resets in ~60 s, not in 15 min
    assert clock.slept and clock.slept[0] < 62


def test_non_read_requests_ignore_the_read_limit() -> None:
    clock = Clock(at("2026-03-01 10:01:00"))
    budget = RateLimitBudget(max_wait_seconds=1, clock=clock, sleep=clock.sleep)
    budget.observe(headers("100,100", "100,100"), status_code=200)
    budget.acquire(is_read=False)
    with pytest.raises(RateLimitError):
        budget.acquire(is_read=True)
