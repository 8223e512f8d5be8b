"""`sync-assets status`: recent sessions with their state, progress and errors."""

from __future__ import annotations

import time
import uuid

from sync_assets.cli import main
from sync_assets.errors import ErrorInfo, ErrorType
from sync_assets.sessions import SessionTracker, SyncState
from sync_assets.status import status_lines
from sync_assets.storage import open_store

from .conftest import add_users


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
