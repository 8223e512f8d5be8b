"""Incremental syncs: list only what is newer than the user's last complete listing.

A scheduled sync (`incremental`) or a push event's (`webhook`) covers a user's recent months,
which may already hold hundreds of activities. Listing them whole costs `floor(N/200) + 1`
requests each time; this lists only the activities that started after the user's **watermark**
(`strava_listing_watermarks`: when the last uninterrupted complete listing of a window reaching
the present started, recorded once its rows were stored and checked) minus a **lookback**
(`SYNC_ASSETS_INCREMENTAL_LOOKBACK_HOURS`, 72), so a day's sync of a user costs one list
request (plus a token refresh when due) whatever the month holds; 200 or more new activities
page on as usual.

Strava's `after` filters on the start date, not on the upload: an activity uploaded later than
`lookback` after it started, into a window already listed, is not seen by the incremental
listing. What catches it: its push event (a `webhook` run lists from that activity's start), and
the first sync after a month ends, which lists every month that ended since the watermark whole
(`listing_start`). A sync without a usable watermark (the first one, or after a gap longer than
the month) lists the whole months, as do backfills and `sync-assets sync`.

The listing is partial, so the months' partitions are completed from the database
(`StoredMerge`): the user's stored rows of the span (`runs.strava_data`, the SummaryActivity as
Strava sent it) that the listing did not return again; a listed activity replaces its stored
version. The database, not the previous Parquet files, because it is what the watermark vouches
for: written in the same step, after the same checks; activities deleted by a push event are
gone from it (and tombstoned), and it is there on a worker whose Parquet storage is not.
A partial listing says nothing about the activities it did not list, so it never deletes stored
rows (`ingest.forget_unlisted` skips it); the safety net after the store counts the merged rows
beside the listed ones (`merged_rows`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from sync_assets.core.models import (
    PartitionData,
    QuarantinedActivity,
    activities_table,
    activity_row,
    quarantine_table,
    validate_page,
)
from sync_assets.core.sessions import SYNC_TYPE_TAG
from sync_assets.core.storage.base import ListingWatermark, SessionRecord, Store
from sync_assets.core.windows import SyncSpan, month_key

INCREMENTAL_SYNC_TYPES = frozenset({"incremental", "webhook"})
# A webhook run's earliest activity start (ISO 8601): its listing reaches back at least there.
LIST_FROM_TAG = "sync_assets/list_from"


@dataclass(frozen=True)
class Incremental:
    """A run that may list incrementally: `lookback` before the watermark, and from
    `must_list_from` at the latest (the earliest start a push event named)."""

    lookback: timedelta
    must_list_from: datetime | None = None


def policy(tags: Mapping[str, str], lookback: timedelta) -> Incremental | None:
    """The run's incremental policy from its tags; None: its months are listed whole.

    A `webhook` run lists incrementally only when it names the earliest start its events need
    (`LIST_FROM_TAG`): an event whose activity Strava could not date asks for whole months."""
    sync_type = tags.get(SYNC_TYPE_TAG)
    if sync_type == "incremental":
        return Incremental(lookback)
    if sync_type == "webhook" and tags.get(LIST_FROM_TAG):
        try:
            when = datetime.fromisoformat(tags[LIST_FROM_TAG])
        except ValueError:
            return None
        return Incremental(lookback, when if when.tzinfo else when.replace(tzinfo=UTC))
    return None


def listing_start(
    span: SyncSpan, watermark: ListingWatermark | None, now: datetime, rule: Incremental
) -> datetime | None:
    """Where an incremental listing of `span` may start, or None: list the span whole.

    Whole when the user has no watermark, when the listings behind it did not start by the
    span's start, when one of the span's months ended since it (the first sync after a month
    ends lists that month whole once: late uploads older than the lookback are found there),
    or when the lookback reaches back past the span's start anyway."""
    if watermark is None or watermark.listed_from > span.start:
        return None
    if span.ended_between(watermark.listed_through, now):
        return None
    since = watermark.listed_through - rule.lookback
    if rule.must_list_from is not None:
        since = min(since, rule.must_list_from)
    since = since.astimezone(UTC).replace(microsecond=0)  # Strava's bounds are whole seconds
    return since if span.start < since < span.end else None


@dataclass(frozen=True)
class Plan:
    """How one span is listed: whole, or from `span.listed_from` with the stored rows of the
    span to merge (`stored`, read before the listing; `vouched_at`: the watermark, when a
    complete listing last returned them)."""

    span: SyncSpan
    stored: Sequence[tuple[int, str]] = ()
    vouched_at: datetime | None = None


def plan(store: Store, span: SyncSpan, rule: Incremental | None, now: datetime) -> Plan:
    """The span's listing: partial when the rule and the user's watermark allow it and every
    stored row of the span can be rebuilt (rows stored before `strava_data` was kept cannot)."""
    if rule is None:
        return Plan(span)
    watermark = store.listing_watermark(span.user_id)
    since = listing_start(span, watermark, now, rule)
    if since is None or watermark is None:
        return Plan(span)
    stored = store.stored_activities(span.user_id, span.start, span.end)
    if any(payload is None for _, payload in stored):
        return Plan(span)
    rows = [(i, p) for i, p in stored if p is not None]
    return Plan(replace(span, listed_from=since), rows, watermark.listed_through)


class StoredMerge:
    """Completes each month of a partial listing from the store, as the fetch writes it
    (`ingest.MonthAssembler` calls it once per month, the span's first month last): the
    month's listed rows, and its stored rows the listing did not return again (validated as a
    listing's would be); a listed activity replaces its stored version. `merged` counts the
    records the store added (rows and, should today's validation refuse a stored one,
    quarantined: those wait in the span's first month, as a listing's would)."""

    def __init__(self, plan: Plan) -> None:
        span = plan.span
        self.span = span
        self.fetched_at = (plan.vouched_at or datetime.now(UTC)).replace(microsecond=0)
        self.merged = 0
        self._listed: set[int] = set()  # every id listed in the months written so far
        batch = validate_page(json.loads(p) for _, p in plan.stored)
        self._rows: dict[str, list[tuple[int, Any]]] = {m: [] for m in span.months}
        for activity, payload in batch.activities:
            month = month_key(activity.start_date)
            if month in self._rows:
                self._rows[month].append((activity.id, (activity, payload)))
        self._refused = list(batch.quarantined)

    def __call__(self, month: str, data: PartitionData) -> PartitionData:
        self._listed.update(data.activities.column("strava_id").to_pylist())
        self._listed.update(
            i for i in data.quarantine.column("strava_id").to_pylist() if i is not None
        )
        rows = [
            activity_row(self.span.user_id, activity, payload, self.fetched_at)
            for i, (activity, payload) in self._rows.pop(month, [])
            if i not in self._listed
        ]
        refused: list[QuarantinedActivity] = []
        if month == self.span.months[0]:
            refused = [q for q in self._refused if q.activity_id not in self._listed]
        self.merged += len(rows) + len(refused)
        activities, quarantine = data.activities, data.quarantine
        if rows:
            activities = pa.concat_tables([activities, activities_table(rows)]).sort_by(
                [("start_date", "ascending"), ("strava_id", "ascending")]
            )
        if refused:
            extra = quarantine_table(self.span.user_id, refused, self.fetched_at)
            quarantine = pa.concat_tables([quarantine, extra])
        return PartitionData(activities, quarantine)


# -- what the fetch tells the store step (the session's `checkpoint_data.listings`) ----------
def listing_record(span: SyncSpan, listed_at: datetime, resumed: int, merged: int) -> dict:
    """One span's listing, as the store step needs it to check the count, clear the staged
    pages and advance the watermark."""
    return {
        "span": span.id,
        "from": span.list_start.isoformat(),
        "end": span.end.isoformat(),
        "listed_at": listed_at.astimezone(UTC).replace(microsecond=0).isoformat(),
        "partial": span.partial,
        "resumed": resumed,
        "merged": merged,
    }


def listings(session: SessionRecord) -> list[dict[str, Any]]:
    return list((session.checkpoint_data or {}).get("listings") or [])


def merged_rows(session: SessionRecord) -> int:
    """Records the fetch took from the store rather than from Strava (partial listings)."""
    return sum(int(x.get("merged") or 0) for x in listings(session))


def next_watermark(
    current: ListingWatermark | None, listing: Mapping[str, Any]
) -> ListingWatermark | None:
    """The watermark after `listing` was stored, or None when it cannot vouch for anything:
    resumed (pages fetched at different times) or of a window that ends before it started.
    A listing starting inside the covered range extends it; otherwise it starts its own."""
    listed_at = datetime.fromisoformat(listing["listed_at"])
    if listing.get("resumed") or datetime.fromisoformat(listing["end"]) <= listed_at:
        return None
    start = datetime.fromisoformat(listing["from"])
    if current is not None and current.listed_from <= start <= current.listed_through:
        return ListingWatermark(current.listed_from, listed_at)
    return ListingWatermark(start, listed_at)


def advance_watermark(store: Store, user: str, session: SessionRecord) -> None:
    """After the user's rows were stored and checked: record what the session's complete
    listings vouch for."""
    current = store.listing_watermark(user)
    for listing in listings(session):
        new = next_watermark(current, listing)
        if new is not None and (current is None or new.listed_through > current.listed_through):
            store.advance_listing_watermark(user, new)
            current = new
