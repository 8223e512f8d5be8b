"""Keyset pagination of `GET /athlete/activities`, whatever order Strava lists in.

Strava documents no order for the list endpoint. Clients in the wild see newest first by
default and oldest first when only `after` is given; with both bounds (what we send) nobody
says. So the order is read from each page's start dates, never assumed:

* ascending (oldest first): the next request moves `after` to one second before the newest
  start seen;
* descending (newest first): the next request moves `before` to one second after the oldest.

The one-second overlap re-serves activities that share the boundary second (dropped as
duplicates by id) rather than losing them. A page in neither order, or a listing whose order
flips between pages, is not guessed at: `read_order` raises a retryable INVALID_RESPONSE, so
the sync fails loudly (pages already fetched stay staged) instead of completing short.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from sync_assets.core.errors import ErrorType, SyncError

Order = Literal["ascending", "descending"]
ORDERS: tuple[Order, ...] = ("ascending", "descending")


@dataclass(frozen=True)
class ListCursor:
    """Where a listing stands: the bounds of the next request and the order seen so far.

    `after` and `before` are the strict bounds sent (epoch seconds); `order` is None until a
    page with two different start seconds shows it; `page` is an offset within the same
    bounds, above 1 only after a full page whose starts all shared one second.
    """

    after: int
    before: int
    order: Order | None = None
    page: int = 1

    @property
    def moving_bound(self) -> str | None:
        """The bound the listing moves: `after` when ascending, `before` when descending."""
        return {"ascending": "after", "descending": "before"}.get(self.order or "")

    @property
    def position(self) -> int:
        """The value of the moving bound (`after` while the order is unknown)."""
        return self.before if self.order == "descending" else self.after

    def as_dict(self) -> dict[str, Any]:
        return {
            "after": self.after,
            "before": self.before,
            "order": self.order,
            "page": self.page,
            "moving_bound": self.moving_bound,
        }

    @classmethod
    def start(cls, window_start: datetime, window_end: datetime) -> ListCursor:
        """The first request of a window `[window_start, window_end)` (strict bounds)."""
        return cls(after=int(window_start.timestamp()) - 1, before=int(window_end.timestamp()))


def start_epoch(record: Any) -> int | None:
    """A record's `start_date` in epoch seconds, or None when it has none we can read."""
    if not isinstance(record, dict) or not isinstance(record.get("start_date"), str):
        return None
    try:
        moment = datetime.fromisoformat(record["start_date"])
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return int(moment.timestamp())
    except (OverflowError, OSError, ValueError):
        return None


def _shown(starts: list[int], limit: int = 6) -> str:
    def iso(s: int) -> str:
        return datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    head = ", ".join(iso(s) for s in starts[:limit])
    return head + (f", ... ({len(starts)} in all)" if len(starts) > limit else "")


def page_order(starts: list[int]) -> Order | None:
    """The order of a page's start seconds: None when fewer than two differ (it says nothing).

    Raises INVALID_RESPONSE when the starts are neither non-decreasing nor non-increasing.
    """
    ups = any(b > a for a, b in zip(starts, starts[1:], strict=False))
    downs = any(b < a for a, b in zip(starts, starts[1:], strict=False))
    if ups and downs:
        raise SyncError(
            ErrorType.INVALID_RESPONSE,
            "GET /athlete/activities answered a page in no order (neither oldest first nor "
            f"newest first): start dates {_shown(starts)}; not guessing what it left out",
            retryable=True,
        )
    if ups:
        return "ascending"
    if downs:
        return "descending"
    return None


def read_order(cursor: ListCursor, starts: list[int], page_number: int) -> Order | None:
    """The listing's order after a page: the page's own, checked against the order so far."""
    seen = page_order(starts)
    if seen is not None and cursor.order is not None and seen != cursor.order:
        raise SyncError(
            ErrorType.INVALID_RESPONSE,
            f"GET /athlete/activities changed order within one listing: page {page_number} is "
            f"{seen}, earlier pages were {cursor.order} (start dates {_shown(starts)}); "
            "not guessing what it left out",
            retryable=True,
        )
    return seen or cursor.order


def advance(cursor: ListCursor, order: Order | None, starts: list[int]) -> ListCursor:
    """The cursor for the request after a full page with these in-window start seconds.

    The bound in the listing's direction moves to one second short of the page's far end
    (the overlap); when it cannot move (every start in one second) or the order is not known
    yet (moving a bound would skip what lies on the other side), the next page is asked for
    by offset within the same bounds.
    """
    if order == "descending" and starts:
        before = min(starts) + 1
        if before < cursor.before:
            return replace(cursor, before=before, order=order, page=1)
    elif order == "ascending" and starts:
        after = max(starts) - 1
        if after > cursor.after:
            return replace(cursor, after=after, order=order, page=1)
    return replace(cursor, order=order, page=cursor.page + 1)
