"""Waiting, in tests, for something another process or thread does."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    condition: Callable[[], object], what: str, timeout: float = 120.0, interval: float = 0.2
) -> float:
    """Poll `condition` every `interval` s until true; the seconds it took (a generous
    bound, not a figure). Fails the test naming `what` after `timeout`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(interval)
    return time.monotonic() - started
