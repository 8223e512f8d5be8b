"""What tests vary or step around in the Strava sandbox: its listing orders, its 15-minute
window's boundaries, an athlete's months."""

from __future__ import annotations

from datetime import UTC, datetime

from sync_assets_sandbox import AthleteHandle, StravaSandbox

from sync_assets.partitions import month_key

# The orders Strava might list activities in (it documents none): tests that count requests,
# resume or crash take `list_order` as a parameter to run in each.
LIST_ORDERS = ("oldest-first-with-after", "newest-first-always", "newest-first-when-bounded")


def quarter_not_midnight(now: float) -> float:
    """The next quarter-hour boundary (epoch seconds) that is not midnight UTC: a test of the
    15-minute window must not see the daily one reset with it when it runs near midnight."""
    boundary = (now // 900 + 1) * 900
    return boundary + 900 if boundary % 86_400 == 0 else boundary


def whole_history(sandbox: StravaSandbox, athlete: AthleteHandle) -> tuple[str, str]:
    """The months from the athlete's first activity to the sandbox's current month."""
    first = month_key(
        datetime.fromisoformat(sandbox.activities(athlete.athlete_id)[0]["start_date"])
    )
    return first, month_key(datetime.fromtimestamp(sandbox.now(), UTC))
