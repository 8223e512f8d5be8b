"""The time windows of a sync, without Dagster: one Strava user x one calendar month (UTC).

A window's key is `<month>|<user>`, e.g. `2016-03-01|6f1c...`: the key Dagster gives the
partition of the same user and month (`sync_assets.partitions`). `sync_spans` turns whatever
windows a run holds into the fewest Strava queries: one per user and contiguous block of months.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

FIRST_MONTH = "2009-01-01"  # Strava's launch; nothing older is synced
USER_DIM = "user"
MONTH_DIM = "month"

_USER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


def validate_user_id(user_id: str) -> str:
    """User ids become partition keys: Dagster forbids `|` and `,` there, so be strict."""
    if not _USER_ID_RE.match(user_id):
        raise ValueError(
            f"invalid user id {user_id!r}: use the app's user id (a uuid); letters, digits and "
            "_.:@- only, at most 128 characters"
        )
    return user_id


def month_start(dt: datetime) -> datetime:
    dt = dt.astimezone(UTC)
    return datetime(dt.year, dt.month, 1, tzinfo=UTC)


def next_month(dt: datetime) -> datetime:
    return datetime(dt.year + dt.month // 12, dt.month % 12 + 1, 1, tzinfo=UTC)


def month_key(dt: datetime) -> str:
    """The `month` dimension key of the month holding `dt` (UTC)."""
    return month_start(dt).strftime("%Y-%m-%d")


def window_key(user_id: str, month: str) -> str:
    """The key of a user's month: `<month>|<user>`, as Dagster writes a multi-partition key
    (dimensions in name order), so it is the partition's key."""
    return f"{month}|{user_id}"


def month_end(month: str) -> datetime:
    """The first instant after the month `month` (a `month` key)."""
    return next_month(datetime.strptime(month, "%Y-%m-%d").replace(tzinfo=UTC))


@dataclass(frozen=True)
class SyncSpan:
    """One user's contiguous block of months: fetched with one paginated Strava query.

    `listed_from`, when set, makes the listing partial: only activities starting at or after it
    are listed (an incremental sync, `sync_assets.core.incremental`), and the months' older
    activities come from the store. A partial listing proves nothing about what it did not
    list, so it never deletes stored rows (`ingest.forget_unlisted`).
    """

    user_id: str
    months: tuple[str, ...]
    listed_from: datetime | None = None

    @property
    def start(self) -> datetime:
        return datetime.strptime(self.months[0], "%Y-%m-%d").replace(tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive end: the first instant of the month after the last one."""
        last = datetime.strptime(self.months[-1], "%Y-%m-%d").replace(tzinfo=UTC)
        return next_month(last)

    @property
    def partial(self) -> bool:
        return self.listed_from is not None

    @property
    def list_start(self) -> datetime:
        """Where the listing starts: the first month's start, or `listed_from`."""
        return self.listed_from or self.start

    @property
    def id(self) -> str:
        """The listing's name in `sync_staging`: its window (a partial listing's own, so its
        pages never resume a listing of the whole span, nor the other way round)."""
        return f"{self.list_start.isoformat()}/{self.end.isoformat()}"

    def ended_between(self, after: datetime, until: datetime) -> bool:
        """Whether one of the span's months ended in (`after`, `until`]."""
        return any(after < month_end(m) <= until for m in self.months)

    def partition_keys(self) -> list[str]:
        return [window_key(self.user_id, m) for m in self.months]


def split_key(key: str) -> tuple[str, str]:
    """`'2016-03-01|u1'` -> `('u1', '2016-03-01')`."""
    month, sep, user = str(key).partition("|")
    if not sep or not month or not user:
        raise ValueError(f"not a <month>|<user> key: {key!r}")
    return user, month


def sync_spans(keys: Iterable[str]) -> list[SyncSpan]:
    """Group partition keys into per-user runs of consecutive months."""
    by_user: dict[str, set[str]] = {}
    for key in keys:
        user, month = split_key(key)
        by_user.setdefault(user, set()).add(month)
    spans: list[SyncSpan] = []
    for user in sorted(by_user):
        block: list[str] = []
        for month in sorted(by_user[user]):
            if block:
                expected = next_month(datetime.strptime(block[-1], "%Y-%m-%d").replace(tzinfo=UTC))
                if month != expected.strftime("%Y-%m-%d"):
                    spans.append(SyncSpan(user, tuple(block)))
                    block = []
            block.append(month)
        if block:
            spans.append(SyncSpan(user, tuple(block)))
    return spans
