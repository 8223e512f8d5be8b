"""Retrying a unit of work whose database connection dropped, on a fresh connection.

A failover, a pooler restart or `pg_terminate_backend` ends every connection of the database at
once; the transaction in flight is rolled back, the pool hands out a new connection next time.
So a unit of work (one store operation: a transaction, or a read) is retried whole, a bounded
number of times within a bounded time, with exponential backoff and full jitter (many runs
reconnecting at once do not arrive together). Only units that may run twice are retried: the
store's writes are upserts, conditional updates or inserts that ignore a conflict.

A unit still failing when the budget is spent raises a retryable `SyncError` of type
`DATABASE` (the seed's `DATABASE_TIMEOUT`), which the steps record in the session.

Units nest (an update that reads the session back): only the outermost one retries, so the
attempts do not multiply.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from sync_assets.core import settings
from sync_assets.core.errors import ErrorType, SyncError
from sync_assets.core.redaction import redact

log = logging.getLogger("sync_assets.storage")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RetryPolicy:
    """How long a unit of work is retried: at most `attempts` tries and `max_seconds` from the
    first, waiting a random time up to `base` x 2^n (capped at `max_wait`) between them."""

    attempts: int = 6
    max_seconds: float = 30.0
    base: float = 0.25
    max_wait: float = 5.0

    @classmethod
    def configured(cls) -> RetryPolicy:
        """The deployment's policy (`SYNC_ASSETS_DB_RETRY_ATTEMPTS`, `..._SECONDS`)."""
        return cls(attempts=settings.db_retry_attempts(), max_seconds=settings.db_retry_seconds())


# Process-wide counters: what the retries did (benchmarks and tests print them).
stats = {"retried": 0, "exhausted": 0}
_stats_lock = threading.Lock()
_depth = threading.local()


def _count(key: str) -> None:
    with _stats_lock:
        stats[key] += 1


def _describe(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return redact(f"{type(exc).__name__}: {first}"[:300])


def retrying(
    transient: tuple[type[BaseException], ...],
    what: str,
    policy: RetryPolicy | None = None,
) -> Retrying:
    """A tenacity loop retrying `transient` errors under `policy`; each retry is logged.
    Inside a unit of work (`call`) it tries once: the unit retries."""
    policy = policy or RetryPolicy.configured()
    if getattr(_depth, "n", 0):
        policy = RetryPolicy(attempts=1)

    def before_sleep(state: RetryCallState) -> None:
        _count("retried")
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            f"database connection lost in {what} ({_describe(exc) if exc else '?'}); "
            f"retrying on a fresh connection in {wait:.2f} s "
            f"(attempt {state.attempt_number + 1} of {policy.attempts})"
        )

    return Retrying(
        retry=retry_if_exception(lambda e: isinstance(e, transient)),
        wait=wait_random_exponential(multiplier=policy.base, max=policy.max_wait),
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.max_seconds),
        before_sleep=before_sleep,
        reraise=True,
    )


def exhausted(exc: BaseException, what: str, attempts: int, seconds: float) -> SyncError:
    """The classified error of a unit whose retries are spent: retryable, a later run may find
    the database back."""
    _count("exhausted")
    return SyncError(
        ErrorType.DATABASE,
        f"the database connection failed in {what} {attempts} time(s) in {seconds:.1f} s "
        f"({_describe(exc)})",
        retryable=True,
        details={"operation": what, "attempts": attempts},
    )


def call(
    fn: Callable[[], Any],
    transient: tuple[type[BaseException], ...],
    what: str,
    policy: RetryPolicy | None = None,
) -> Any:  # noqa: ANN401 - whatever `fn` returns
    """`fn()` as one unit of work: retried on `transient` errors (outermost unit only), a
    `SyncError` once the policy is spent."""
    if not transient or getattr(_depth, "n", 0):
        return fn()
    loop = retrying(transient, what, policy)
    _depth.n = 1
    started, tries = time.monotonic(), 0
    try:
        for attempt in loop:
            with attempt:
                tries += 1
                return fn()
    except transient as exc:
        raise exhausted(exc, what, tries, time.monotonic() - started) from exc
    finally:
        _depth.n = 0
    raise AssertionError("unreachable")  # pragma: no cover - tenacity returns or raises


def unit_of_work(method: F) -> F:
    """A store method retried whole when its connection drops (the store's `_retry_on`)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        return call(lambda: method(self, *args, **kwargs), self._retry_on, method.__name__)

    wrapper.__unit_of_work__ = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def locks_held(
    transaction: Callable[[], AbstractContextManager[Any]], lock: Callable[[Any], Any]
) -> Callable[[tuple[type[BaseException], ...], str], AbstractContextManager[None]]:
    """Locks that live as long as a transaction kept open around a block (the weather cells'
    advisory locks): taken as a retried unit; a connection that drops while the block runs
    takes the locks with it, which only lets another run fetch the same cells, so its error
    on closing is logged, not raised."""

    @contextmanager
    def held(transient: tuple[type[BaseException], ...], what: str) -> Iterator[None]:
        def take() -> AbstractContextManager[Any]:
            tx = transaction()
            conn = tx.__enter__()
            try:
                lock(conn)
            except BaseException:
                with suppress(*transient):
                    tx.__exit__(*sys.exc_info())
                raise
            return tx

        tx = call(take, transient, what)
        try:
            yield
        except BaseException:
            with suppress(*transient):
                tx.__exit__(*sys.exc_info())
            raise
        try:
            tx.__exit__(None, None, None)
        except transient as exc:
            log.warning(f"the connection holding {what} dropped ({_describe(exc)}); the locks went")

    return held
