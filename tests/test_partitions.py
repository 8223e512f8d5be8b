from datetime import UTC, datetime

import pytest

from sync_assets.partitions import (
    partition_key,
    split_key,
    strava_partitions,
    sync_spans,
    validate_user_id,
)


def test_key_format_is_month_then_user() -> None:
    assert str(partition_key("6f1c2b4e-0000-4000-8000-000000000001", "2016-03-01")) == (
        "2016-03-01|6f1c2b4e-0000-4000-8000-000000000001"
    )
    assert split_key("2016-03-01|u1") == ("u1", "2016-03-01")
    dims = {d.name: d.partitions_def for d in strava_partitions.partitions_defs}
    assert dims["month"].start == datetime(2009, 1, 1, tzinfo=UTC)
    assert dims["user"].name == "strava_users"


def test_spans_group_contiguous_months_per_user() -> None:
    keys = [f"2016-{m:02d}-01|u1" for m in range(1, 13)] + ["2017-03-01|u1", "2016-05-01|u2"]
    spans = sync_spans(keys)
    assert [(s.user_id, len(s.months)) for s in spans] == [("u1", 12), ("u1", 1), ("u2", 1)]
    assert spans[0].start == datetime(2016, 1, 1, tzinfo=UTC)
    assert spans[0].end == datetime(2017, 1, 1, tzinfo=UTC)  # December included
    assert sync_spans(["2016-12-01|u1", "2017-01-01|u1"])[0].months == ("2016-12-01", "2017-01-01")


@pytest.mark.parametrize("bad", ["a|b", "a,b", "", "x" * 200, "spaces here"])
def test_user_ids_that_would_break_partition_keys_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        validate_user_id(bad)
