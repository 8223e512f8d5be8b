"""`sync-assets status`: recent sessions with their state, progress and errors."""

from __future__ import annotations

import time
import uuid

from sync_assets.apps.cli import main
from sync_assets.apps.demo_ui import demo_user_id
from sync_assets.apps.status import DEMO_SETTINGS, id_width, status_lines, status_report
from sync_assets.core.errors import ErrorInfo, ErrorType
from sync_assets.core.sessions import SessionTracker, SyncState
from sync_assets.core.storage import open_store

from .helpers import add_users


def test_recent_sessions_show_state_progress_and_errors(backend, monkeypatch, capsys) -> None:
    url, data_dir = backend
    store = open_store(url, data_dir)
    ann, bob = str(uuid.uuid4()), str(uuid.uuid4())
    if url:
        add_users(url, ann, bob)

    def session(user: str) -> SessionTracker:
        time.sleep(0.01)  # distinct start times: newest first is well defined
        return SessionTracker(store, run_id=str(uuid.uuid4()), user_id=user, min_interval=0)

    done = session(ann)
    done.enter(SyncState.FETCHING, activities_fetched=1500)
    done.complete(activities_stored=1480, activities_updated=20, activities_failed=0)
    failed = session(bob)
    failed.enter(SyncState.FETCHING)
    failed.fail(
        ErrorInfo(
            type=ErrorType.AUTHENTICATION,
            message="Strava rejected the grant for user bob: the athlete revoked the app",
            retryable=False,
        )
    )
    running = session(ann)
    running.enter(SyncState.FETCHING)
    running.progress(600, 1500, 3, activities_fetched=600)

    newest = store.recent_sessions()
    assert [s.dagster_run_id for s in newest] == [
        running.session.dagster_run_id,
        failed.session.dagster_run_id,
        done.session.dagster_run_id,
    ]
    assert [s.user_id for s in store.recent_sessions(ann)] == [ann, ann]
    assert len(store.recent_sessions(limit=1)) == 1

    lines = status_lines(newest)
    assert "fetching_activities" in lines[0] and "[########------------]  40%" in lines[0]
    assert "600/1,500 fetching, 3 failed" in lines[0]
    assert "failed" in lines[1] and "0 fetched, 0 stored, 0 failed" in lines[1]
    assert lines[2].strip().startswith("error: AUTHENTICATION (not retryable): Strava rejected")
    assert "[####################] 100%" in lines[3]
    assert "1,500 fetched, 1,480 new, 20 updated, 0 failed" in lines[3]

    # The command itself, on this deployment's store.
    if url:
        monkeypatch.setenv("DATABASE_URL", url)
    else:
        monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SYNC_ASSETS_HOME", str(data_dir))
    assert main(["status", "--user", bob]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and bob[:8] in out[0] and "AUTHENTICATION" in out[1]
    assert main(["status", "--user", "not a user id"]) == 2


def test_no_session_yet() -> None:
    assert status_lines([]) == ["no sync session yet"]


def test_users_are_told_apart_by_the_shortest_distinguishing_prefix() -> None:
    ann, bob = (str(uuid.UUID(int=7000 + i)) for i in (1, 2))  # the demo's former ids
    assert ann[:8] == bob[:8] == "00000000"
    assert id_width([ann, bob]) == 36  # they differ in their last character only
    assert id_width([ann, ann]) == id_width([]) == 8
    assert id_width(["6f1c2a4e-8b3d", "6f1c2a4f-0000"]) == 8
    assert id_width(["6f1c2a4e-8b3d", "6f1c2a4e-9000"]) == 10
    # The demo's ids differ in their first group.
    demo = [demo_user_id(7, i) for i in range(2)]
    assert demo == ["00000701-0000-4000-8000-000000007001", "00000702-0000-4000-8000-000000007002"]
    assert id_width(demo) == 8


def test_status_finds_the_demo_and_tells_its_users_apart(tmp_path) -> None:
    """Nothing set (no DATABASE_URL, default home): the default store has no session, the
    demo's folder in it has: those are shown, and the first line says whose they are."""
    data_dir, demo = tmp_path / "home", tmp_path / "home" / "demo"
    demo.mkdir(parents=True)
    (demo / DEMO_SETTINGS).write_text("{}")
    ann, bob = (str(uuid.UUID(int=7000 + i)) for i in (1, 2))
    store = open_store(None, demo)
    for user in (ann, bob):
        time.sleep(0.01)
        tracker = SessionTracker(store, run_id=str(uuid.uuid4()), user_id=user, min_interval=0)
        tracker.enter(SyncState.FETCHING, activities_fetched=10)
        tracker.complete(activities_stored=10, activities_updated=0, activities_failed=0)

    lines = status_report(data_dir=data_dir)
    assert lines[0].startswith(f"no sync session in {data_dir} yet; the demo's")
    assert str(demo) in lines[0] and "sync-assets ui" in lines[0]
    assert len(lines) == 3
    assert bob in lines[1] and ann in lines[2]  # whole: nothing shorter tells them apart
    # One user alone: the first group is enough.
    assert status_report(user_id=ann, data_dir=data_dir)[1:] == [lines[2].replace(ann, ann[:8])]

    # With sessions of its own, the configured store is what status shows.
    own = open_store(None, data_dir)
    SessionTracker(own, run_id=str(uuid.uuid4()), user_id=ann, min_interval=0).enter(
        SyncState.FETCHING
    )
    lines = status_report(data_dir=data_dir)
    assert len(lines) == 1 and "fetching_activities" in lines[0] and ann[:8] in lines[0]
    # A folder without the demo's settings is no demo.
    (demo / DEMO_SETTINGS).unlink()
    assert status_report(user_id=bob, data_dir=data_dir) == ["no sync session yet"]
