"""Validation and quarantine of Strava payloads."""

import json

from sync_assets.core.models import ACTIVITY_SCHEMA, activities_table, activity_row, validate_page


def activity(**over):
    base = {
        "id": 101,
        "athlete": {"id": 7, "resource_state": 1},
        "name": "Morgenlauf in München",
        "type": "Run",
        "sport_type": "Run",
        "start_date": "2020-05-04T06:12:33Z",
        "start_date_local": "2020-05-04T08:12:33Z",
        "timezone": "(GMT+01:00) Europe/Berlin",
        "distance": 10012.3,
        "moving_time": 3000,
        "elapsed_time": 3100,
        "total_elevation_gain": 41.0,
        "average_speed": 3.34,
        "max_speed": 5.1,
        "has_heartrate": True,
        "average_heartrate": 151.2,
        "max_heartrate": 178.0,
        "start_latlng": [48.13, 11.57],
        "end_latlng": [48.14, 11.58],
        "manual": False,
        "trainer": False,
        "commute": False,
        "private": False,
        "visibility": "everyone",
        "kudos_count": 3,
        "unknown_future_field": {"x": 1},
    }
    base.update(over)
    return base


def test_valid_page_keeps_unknown_fields_in_payload() -> None:
    batch = validate_page(
        [
            activity(),
            activity(id=102, start_latlng=[], end_latlng=[], manual=True, has_heartrate=False),
        ]
    )
    assert not batch.quarantined
    (a, payload), (b, _) = batch.activities
    assert json.loads(payload)["unknown_future_field"] == {"x": 1}
    assert b.start_latlng is None
    row = activity_row("u1", b, "{}", a.start_date)
    assert row["start_lat"] is None and row["average_heartrate_bpm"] is None
    assert row["data_quality"] is None  # complete: nothing to note
    table = activities_table([activity_row("u1", a, payload, a.start_date)])
    assert table.schema == ACTIVITY_SCHEMA and table.num_rows == 1


def test_bad_records_are_quarantined_with_reason_and_payload() -> None:
    bad = [
        activity(id=1, distance=-5),
        activity(id=2, start_date="1900-01-01T00:00:00Z"),
        activity(id=3, start_date="2999-01-01T00:00:00Z"),
        activity(id=4, start_latlng=[123.0, 5.0]),
        activity(id=5, name="x" * 10_000),
        {k: v for k, v in activity(id=6).items() if k != "start_date"},
        activity(id=7, moving_time="fast"),
        ["not", "an", "object"],
        activity(id=8, has_heartrate="yes"),
    ]
    batch = validate_page([*bad, activity(id=9)])
    assert [a.id for a, _ in batch.activities] == [9]
    reasons = {q.activity_id: q.reason for q in batch.quarantined}
    assert len(batch.quarantined) == len(bad)
    assert "distance" in reasons[1]
    assert "before 1990" in reasons[2]
    assert "future" in reasons[3]
    assert "out of range" in reasons[4]
    assert "name" in reasons[5]
    assert "start_date" in reasons[6]
    assert "moving_time" in reasons[7]
    assert reasons[None] == "not a JSON object"
    assert all(q.payload for q in batch.quarantined)
    assert (
        json.loads(next(q.payload for q in batch.quarantined if q.activity_id == 1))["distance"]
        == -5
    )


def test_sport_type_falls_back_to_type() -> None:
    rec = activity()
    del rec["sport_type"]
    batch = validate_page([rec])
    assert batch.activities[0][0].sport_type == "Run"
    assert batch.activities[0][0].quality_notes == ("sport_type missing, taken from type",)


def test_moving_time_above_elapsed_time_is_stored_as_sent_and_noted() -> None:
    """Some devices send it; it used to be quarantined ("moving_time exceeds elapsed_time")."""
    batch = validate_page([activity(moving_time=4000, elapsed_time=3600)])
    assert not batch.quarantined
    ((a, payload),) = batch.activities
    row = activity_row("u1", a, payload, a.start_date)
    assert (row["moving_time_seconds"], row["elapsed_time_seconds"]) == (4000, 3600)
    assert json.loads(row["data_quality"]) == ["moving_time 4000 s above elapsed_time 3600 s"]


def test_missing_fields_are_stored_as_neutral_values_and_noted() -> None:
    rec = {
        k: v
        for k, v in activity(private=None, athlete=None).items()
        if k not in ("distance", "name", "sport_type", "type")
    }
    ((a, payload),) = validate_page([rec]).activities
    row = activity_row("u1", a, payload, a.start_date)
    assert (row["distance_meters"], row["name"], row["sport_type"], row["type"]) == (
        0.0,
        "",
        "Unknown",
        None,
    )
    assert row["private"] is False and row["athlete_id"] is None
    assert json.loads(row["data_quality"]) == [
        "name missing",
        "distance missing",
        "private missing, read as false",
        "sport_type and type missing, stored as Unknown",
        "athlete missing",
    ]
