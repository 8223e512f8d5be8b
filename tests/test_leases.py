"""The hold of a run on a user (`core.leases`), on both backends: one holder at a time, a
waiter goes on when the holder frees the user, when its run has ended, or when its heartbeat
stopped; staging refuses pages of a run that does not hold the user."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from sync_assets.core.clients.strava_listing import ListCursor
from sync_assets.core.errors import SyncError
from sync_assets.core.leases import UserHold
from sync_assets.core.storage import open_store
from sync_assets.core.storage.base import LeaseLost

from .helpers import add_users

CURSOR = ListCursor(after=1_767_225_600, before=1_769_904_000, order="ascending")


@pytest.fixture
def store_and_user(backend):
    url, data_dir = backend
    user = str(uuid.uuid4())
    if url:
        add_users(url, user)
    with open_store(url, data_dir) as store:
        yield store, user


def test_a_second_run_waits_until_the_first_frees_the_user(store_and_user) -> None:
    store, user = store_and_user
    order: list[str] = []
    with UserHold(store, [user], "run-a", release=True, poll_seconds=0.05):
        assert store.lease_holder(user).run_id == "run-a"

        def second() -> None:
            with UserHold(store, [user], "run-b", release=True, poll_seconds=0.05):
                order.append("b")

        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.5)
        order.append("a ends")  # b is still waiting
    waiter.join(timeout=30)
    assert order == ["a ends", "b"]
    assert store.lease_holder(user) is None


def test_a_holder_whose_run_ended_or_whose_heartbeat_stopped_is_passed_by(store_and_user):
    store, user = store_and_user
    assert store.lease_take(user, "dead", 300)
    with pytest.raises(SyncError, match="still working"):
        UserHold(store, [user], "late", wait_seconds=0.3, poll_seconds=0.05).acquire()
    UserHold(store, [user], "next", holder_ended=lambda run: run == "dead").acquire()
    assert store.lease_holder(user).run_id == "next"
    assert store.lease_take(user, "next", 0.2)  # now with a short ttl, and no heartbeat
    time.sleep(0.5)
    assert store.lease_holder(user).expired
    UserHold(store, [user], "after", poll_seconds=0.05).acquire()
    assert store.lease_holder(user).run_id == "after"


def test_only_the_holder_stages_and_adopts_pages(store_and_user) -> None:
    store, user = store_and_user
    assert store.lease_take(user, "run-a", 300)
    store.stage_page(user, "span", 1, CURSOR, "[]", run_id="run-a")
    with pytest.raises(LeaseLost):
        store.stage_page(user, "span", 2, CURSOR, "[]", run_id="run-b")
    with pytest.raises(LeaseLost):
        store.adopt_staging(user, "span", "run-b")
    store.lease_release(user, "run-a")
    assert store.lease_take(user, "run-b", 300)
    assert store.adopt_staging(user, "span", "run-b") == 1
    assert [p.page for p in store.staged_pages(user, "span")] == [1]
