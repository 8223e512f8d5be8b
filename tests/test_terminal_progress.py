"""The sync's progress in the terminal comes from its `sync_sessions` rows: plain lines per
phase change from snapshots, then real syncs watched by `SessionProgress` (plain and live), and
a wait for the weather API's budget seen in the session while it happens."""

from __future__ import annotations

import io
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import AssetSelection, Definitions, define_asset_job, instance_for_test
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from rich.console import Console

from sync_assets.apps.terminal_progress import PlainLines, SessionProgress, live_view, plain_lines
from sync_assets.assets import raw_strava_activities, runs_table, weather_enriched_activities
from sync_assets.core.clients.weather import OpenMeteoProvider, WeatherWait
from sync_assets.core.storage import SessionRecord, open_store
from sync_assets.partitions import USERS_PARTITIONS_NAME

from .helpers import connect_user, make_resources, whole_history

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BASE = SessionRecord(
    id="s1",
    user_id="5b0c3f1e-0000-4000-8000-000000000001",
    dagster_run_id="run-1",
    sync_type="backfill",
    status="initiated",
    current_phase="fetching",
    time_range_start=None,
    time_range_end=None,
    total_activities_estimated=0,
    activities_fetched=0,
    activities_enriched=0,
    activities_stored=0,
    activities_updated=0,
    activities_skipped=0,
    activities_failed=0,
    error_count=0,
    progress={},
    last_error=None,
    retry_count=0,
    last_successful_page=0,
    checkpoint_data={},
    started_at=T0,
    completed_at=None,
    last_activity_at=T0,
)


def at(**changes: object) -> SessionRecord:
    return replace(BASE, **changes)


def render(sessions: list[SessionRecord], now: datetime) -> str:
    out = io.StringIO()
    Console(file=out, force_terminal=True, width=110).print(live_view(sessions, now))
    return out.getvalue()


# -- (1) the renderer on snapshots -----------------------------------------------------------
def test_plain_lines_one_per_phase_change_with_the_figures() -> None:
    fetching = at(status="fetching_activities", current_phase="fetching")
    page = {"phase": "fetching_activities", "processed": 400, "total": None}
    enriching = {"phase": "enriching_weather", "weather_requests": 1}
    waited = {"weather_requests": 3, "weather_waits": 1, "weather_waited_seconds": 38}
    polls = [
        [],  # before the run wrote its session
        [BASE],
        [fetching],
        [replace(fetching, activities_fetched=400, last_successful_page=2, progress=page)],
        [replace(fetching, activities_fetched=400, last_successful_page=2, progress=page)],
        # The listing's last pages and the weather step's end fell between two polls.
        [
            at(
                status="enriching_weather",
                current_phase="enriching",
                activities_fetched=1_200,
                total_activities_estimated=1_200,
                last_successful_page=7,
                activities_failed=2,
                progress={**enriching, "weather_requests_planned": 3},
            )
        ],
        # Storing, too: its figures, and the weather step's, stay in the completed session.
        [
            at(
                status="completed",
                current_phase="completed",
                activities_fetched=1_200,
                activities_enriched=683,
                activities_stored=1_150,
                activities_updated=48,
                activities_failed=2,
                last_successful_page=7,
                progress={"phase": "completed", **waited},
                completed_at=T0 + timedelta(seconds=12.34),
            )
        ],
    ]
    lines = plain_lines(polls, T0 + timedelta(seconds=20))
    assert lines == [
        "fetching: 1,200 activities in 7 pages, 2 quarantined",
        "enriching: 683 activities with weather, 3 weather requests, waited 38 s",
        "storing: 1,198 rows (1,150 new, 48 updated), 2 failed",
        "completed in 12.3 s",
    ]
    # Polled again, nothing more is said.
    assert plain_lines([*polls, polls[-1], polls[-1]], T0) == lines


def test_plain_lines_of_a_weather_rerun_a_failure_and_its_retry() -> None:
    feed = PlainLines()
    now = T0 + timedelta(seconds=5)
    # An enrich job: no fetching phase, so no fetching line.
    enriching = at(status="enriching_weather", current_phase="enriching", sync_type="enrichment")
    assert feed.feed([enriching], now) == []
    failed = replace(
        enriching,
        status="failed",
        current_phase="storing",
        activities_enriched=40,
        progress={"weather_requests": 2},
        last_error={"type": "DATABASE", "message": "storing runs failed: OperationalError\n..."},
        completed_at=T0 + timedelta(seconds=3),
    )
    assert feed.feed([failed], now) == [
        "enriching: 40 activities with weather, 2 weather requests",
        "failed while storing after 3.0 s: DATABASE: storing runs failed: OperationalError",
    ]
    retrying = replace(failed, status="retrying", retry_count=1, completed_at=None)
    assert feed.feed([retrying], now) == ["retrying (retry 1) from storing"]
    done = replace(
        retrying,
        status="completed",
        current_phase="completed",
        activities_updated=40,
        completed_at=T0 + timedelta(seconds=9),
    )
    # The phases before the one that failed are not told twice.
    assert feed.feed([done], now) == ["storing: 40 rows (40 updated)", "completed in 9.0 s"]
    # A run that ended without its session saying so (killed): where it stopped, at the end.
    stuck = at(status="fetching_activities", activities_fetched=200, last_successful_page=1)
    assert PlainLines().feed([stuck], now, final=True) == [
        "fetching: 200 activities in 1 page (unfinished: still fetching_activities after 5.0 s)"
    ]


def test_the_live_view_of_snapshots() -> None:
    now = T0 + timedelta(seconds=30)
    listing = at(
        status="fetching_activities",
        activities_fetched=1_000,
        last_successful_page=5,
        total_activities_estimated=1_200,
    )
    text = render([listing], now)
    assert "fetching" in text and "1,000 activities so far, 5 pages" in text
    assert "at least 1,200 expected" in text and "30.0 s" in text
    until = (now + timedelta(seconds=38)).isoformat()
    weather = at(
        status="enriching_weather",
        current_phase="enriching",
        activities_fetched=1_200,
        last_successful_page=7,
        total_activities_estimated=1_200,
        progress={
            "processed": 1,
            "total": 3,
            "estimated_completion": (now + timedelta(seconds=20)).isoformat(),
            "weather_requests": 1,
            "weather_requests_planned": 3,
            "waiting": {"seconds": 45, "for": "Open-Meteo's per-minute budget", "until": until},
        },
    )
    text = render([weather], now)
    assert "1,200 activities in 7 pages" in text  # the phase behind it, done
    assert "1/3 weather requests for 1,200 activities" in text
    assert "waiting 38 s for Open-Meteo's per-minute budget" in text  # counted down
    assert "~20.0 s left" in text
    # An enrich job's view says fetching is not part of it.
    rerun = replace(weather, activities_fetched=0, last_successful_page=0)
    assert "not in this run" in render([rerun], now)


# -- (2), (3) real syncs watched by SessionProgress -------------------------------------------
def sync_job(resources: dict[str, object]):  # noqa: ANN201 - dagster's JobDefinition
    """The sync job (the three assets) as `sync-assets sync` runs it, on these resources."""
    return Definitions(
        assets=[raw_strava_activities, weather_enriched_activities, runs_table],
        jobs=[define_asset_job("sync", selection=AssetSelection.all())],
        resources=resources,
    ).resolve_job_def("sync")


def watched_sync(
    sandbox,
    server,
    tmp_path: Path,
    url: str | None,
    n: int,
    *,
    weather: dict[str, object] | None = None,
    watchers: list[SessionProgress] | None = None,
    **watch: object,
) -> tuple[object, SessionProgress, SessionRecord, str]:
    """A sync of a new athlete's whole history through `execute_in_process(run_id=...)`,
    watched (SessionProgress on a StringIO, appended to `watchers` before it starts). Returns
    the result, the watcher, the session, what was written."""
    data_dir = tmp_path / "data"
    store = open_store(url, data_dir)
    resources = make_resources(sandbox, server, tmp_path, url, data_dir, weather)
    user, athlete = connect_user(store, sandbox, url, n, years=2.0)
    first, last = whole_history(sandbox, athlete)
    out = io.StringIO()
    run_id = str(uuid.uuid4())
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
        watcher = SessionProgress(store, run_id, stream=out, interval=0.2, **watch)
        if watchers is not None:
            watchers.append(watcher)
        with watcher:
            result = sync_job(resources).execute_in_process(
                run_id=run_id,
                instance=instance,
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: f"{first}|{user}",
                    ASSET_PARTITION_RANGE_END_TAG: f"{last}|{user}",
                },
                raise_on_error=False,
            )
    assert result.success and result.run_id == run_id
    return result, watcher, store.get_session(run_id, user), out.getvalue()


def test_a_sync_watched_in_plain_mode_prints_each_phase_with_its_counts(
    backend, sandbox, server, tmp_path
) -> None:
    url, _ = backend
    sandbox.set_faults(latency_seconds=0.1)  # pages take a moment, as Strava's do
    _, watcher, session, text = watched_sync(sandbox, server, tmp_path, url, 600)
    assert not watcher.interactive  # a StringIO is no terminal
    pages = sandbox.request_count(kind="api", path_prefix="/api/v3/athlete/activities")
    requests = server.weather.request_count("archive")
    assert session.status == "completed" and session.activities_fetched == 600
    took = (session.completed_at - session.started_at).total_seconds()
    assert (
        text.splitlines()
        == watcher.lines
        == [
            f"fetching: 600 activities in {pages} pages",
            f"enriching: {session.activities_enriched:,} activities with weather, "
            f"{requests} weather requests",
            "storing: 600 rows (600 new)",
            f"completed in {took:.1f} s",
        ]
    )
    assert 0 < session.activities_enriched <= 600 and requests > 0
    # The weather step's figures are the session's (the front end reads the same).
    assert session.progress["weather_requests"] == requests
    assert "waiting" not in session.progress


def test_a_sync_watched_on_a_terminal_shows_a_live_view(sandbox, server, tmp_path) -> None:
    sandbox.set_faults(latency_seconds=0.15)
    _, watcher, session, text = watched_sync(sandbox, server, tmp_path, None, 600, interactive=True)
    assert watcher.lines == []  # no plain line on a terminal
    assert "\x1b[" in text  # a terminal's escapes: the view is redrawn in place
    assert "fetching" in text and "activities so far" in text  # while the listing ran
    assert "weather requests for 600 activities" in text  # while the weather step ran
    # The last view stays: every phase with its figures, and the end.
    final = text[text.rindex("completed in") :]
    assert "600 activities in" in final and "600 rows (600 new)" in final
    assert f"{session.activities_enriched:,} activities with weather" in final


def test_quiet_writes_nothing(sandbox, server, tmp_path) -> None:
    _, watcher, session, text = watched_sync(sandbox, server, tmp_path, None, 50, quiet=True)
    assert session.status == "completed" and text == "" and watcher.sessions == []


# -- (4) a wait for the weather API's limits, in the session while it happens ---------------
def test_a_weather_budget_wait_is_in_the_session_while_it_happens(
    sandbox, server, tmp_path, monkeypatch
) -> None:
    """Open-Meteo's per-minute limit (the sandbox's answer to a spent minute: 429 "Minutely
    API request limit exceeded") makes the weather step wait for the next minute. The wait is
    slept here only until the watcher has polled it: meanwhile the session (and the display)
    say what is awaited and until when; then the note is gone."""
    server.weather.set_faults(rate_limit_next=1)  # the first weather request finds it spent
    seen: list[tuple[float, SessionRecord]] = []
    watchers: list[SessionProgress] = []

    def sleep(seconds: float) -> None:
        watcher = watchers[0]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # until the watcher has polled the note
            sessions = [s for s in watcher.sessions if "waiting" in s.progress]
            if sessions:
                seen.append((seconds, sessions[0]))
                break
            time.sleep(0.05)

    real_init = OpenMeteoProvider.__init__

    def init(self, *args: object, **kwargs: object) -> None:
        real_init(self, *args, **{**kwargs, "sleep": sleep})

    monkeypatch.setattr(OpenMeteoProvider, "__init__", init)
    # The resource's default: a wait up to the next minute is worth it (the tests' is 5 s).
    weather = {"max_wait_seconds": 90.0}
    _, watcher, session, text = watched_sync(
        sandbox, server, tmp_path, None, 300, weather=weather, watchers=watchers
    )
    assert len(seen) == 1, seen
    seconds, during = seen[0]
    assert during.status == "enriching_weather"
    wait = during.progress["waiting"]
    assert wait["for"] == "Open-Meteo's per-minute limit (it answered 429)"
    assert abs(wait["seconds"] - seconds) <= 1 and 1 <= seconds <= 61
    assert datetime.fromisoformat(wait["until"]) > during.last_activity_at
    assert during.progress["weather_waits"] == 1
    shown = render([during], during.last_activity_at)
    assert f"waiting {wait['seconds']} s for Open-Meteo's per-minute limit" in shown
    # Over: the note is gone, what it cost stays.
    assert "waiting" not in session.progress and session.progress["weather_waits"] == 1
    waited = session.progress["weather_waited_seconds"]
    assert abs(waited - seconds) <= 1 and f", waited {waited} s\n" in text


def test_the_budget_tells_when_a_wait_starts_and_ends(server) -> None:
    """The provider's own budget (a sliding minute): the wait is noted before it is slept,
    and over even when the sleep is interrupted."""
    events: list[WeatherWait | None] = []

    class Interrupted(Exception):
        pass

    def sleep(seconds: float) -> None:
        assert events and events[-1] is not None  # the note comes first
        raise Interrupted

    p = OpenMeteoProvider(
        server.weather_url, minutely=2, max_wait_seconds=90, sleep=sleep, on_wait=events.append
    )
    p.budget.acquire(2.0, 1)  # the minute is spent
    started = datetime.now(UTC)
    (request,) = p.plan({(48.9, 2.4): [started - timedelta(days=30)]}, started.date())
    with pytest.raises(Interrupted):
        p.fetch(request)
    wait, over = events
    assert over is None and wait.reason == "Open-Meteo's per-minute budget"
    assert 55 < wait.seconds <= 60 and wait.text().startswith("waiting ")
    assert wait.until > started + timedelta(seconds=55)
    p.breaker.close()  # breakers are per API URL and process: leave none open behind
    p.close()


def test_display_errors_never_reach_the_sync(tmp_path) -> None:
    class Broken:
        def run_sessions(self, run_id: str) -> list[SessionRecord]:
            raise OSError("the database went away")

    out = io.StringIO()
    with SessionProgress(Broken(), "run", stream=out, interval=0.05) as watcher:  # type: ignore[arg-type]
        time.sleep(0.2)
    assert out.getvalue() == "" and watcher.sessions == []
    assert not any(t.name.startswith("session-progress") for t in threading.enumerate())
