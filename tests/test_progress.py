"""Progress a front end can watch: during one sync, `sync_sessions` announces its progress on
PostgreSQL's channel `sync_sessions` several times, at a bounded rate (a write per fetched
page, at most one a second otherwise; never one per row)."""

from __future__ import annotations

import json
import threading
import time

import psycopg
from cryptography.fernet import Fernet
from dagster import instance_for_test

from sync_assets.core.storage import open_store
from sync_assets.partitions import USERS_PARTITIONS_NAME

from .helpers import (
    connect_user,
    make_resources,
    sync_range,
    whole_history,
)

PAGE_SECONDS = 0.4


def listen(
    url: str, got: list[tuple[float, dict]], ready: threading.Event, stop: threading.Event
) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("LISTEN sync_sessions")
        ready.set()
        while not stop.is_set():
            for note in conn.notifies(timeout=0.2, stop_after=1):
                got.append((time.monotonic(), json.loads(note.payload)))


def test_a_listener_sees_the_progress_move_at_a_bounded_rate(
    sandbox, server, pg_url, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("SYNC_ASSETS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    data_dir = tmp_path / "data"
    store = open_store(pg_url, data_dir)
    resources = make_resources(sandbox, server, tmp_path, pg_url, data_dir)
    user, athlete = connect_user(store, sandbox, pg_url, 2_000, years=5.0)  # 11 list pages
    sandbox.set_faults(latency_seconds=PAGE_SECONDS)
    got: list[tuple[float, dict]] = []
    ready, stop = threading.Event(), threading.Event()
    listener = threading.Thread(target=listen, args=(pg_url, got, ready, stop), daemon=True)
    listener.start()
    assert ready.wait(10)
    first, last = whole_history(sandbox, athlete)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
        assert sync_range(instance, resources, user, first, last).success
    time.sleep(0.5)
    stop.set()
    listener.join(5)

    mine = [(t, n) for t, n in got if n["user_id"] == user]
    assert [n["status"] for _, n in mine][-1] == "completed"
    fetching = [
        (t, n["progress"]["processed"])
        for t, n in mine
        if n["status"] == "fetching_activities" and n["progress"].get("processed")
    ]
    seen = [p for _, p in fetching]
    assert len(set(seen)) >= 5, seen  # the bar moves while pages arrive
    assert seen == sorted(seen) and seen[-1] == 2_000
    # The seed's columns ride along: the phase, and the total estimated from the pages (one
    # more page while the last was full) until the listing is done.
    listing = [n for _, n in mine if n["status"] == "fetching_activities"]
    assert {n["current_phase"] for n in listing} == {"fetching"}
    for n in listing:
        processed = n["progress"].get("processed") or 0
        assert n["total_activities_estimated"] in (processed, processed + 200), n
    assert any(n["total_activities_estimated"] > n["activities_fetched"] for n in listing)
    final = mine[-1][1]
    assert (final["current_phase"], final["total_activities_estimated"]) == ("completed", 2_000)
    assert final["error_count"] == 0 and final["last_activity_at"]
    # Bounded: one write per page (its checkpoint carries the progress), never one per row.
    pages = sandbox.request_count(kind="api", path_prefix="/api/v3/athlete/activities")
    assert len(fetching) <= pages + 1, (len(fetching), pages)
    assert all("token" not in json.dumps(n) for _, n in mine)
