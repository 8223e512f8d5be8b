"""`sync-assets sync --json` and `status --json`: the seed's SyncResponse, checked against the
JSON Schema the project ships, from real syncs of the CLI against the sandboxes, on both
backends. `pytest tests/test_sync_response.py -s` prints the objects (completed and failed).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import jsonschema
import pytest
from cryptography.fernet import Fernet
from sync_assets_sandbox import RateLimits

from sync_assets.core import responses
from sync_assets.core.storage.base import SessionRecord

from .helpers import CLI, cli_connect, sandbox_env
from .helpers.databases import add_users

SCHEMA = json.loads(responses.SCHEMA_PATH.read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def objects(out: subprocess.CompletedProcess[str]) -> list[dict]:
    """stdout as JSON lines, each valid against the shipped schema: nothing else is there."""
    found = [json.loads(line) for line in out.stdout.splitlines()]
    for obj in found:
        VALIDATOR.validate(obj)
    return found


def test_the_committed_schema_is_the_models_and_the_cli_prints_it() -> None:
    assert responses.SCHEMA_PATH.read_text() == responses.schema_text()
    assert responses.main(["--check"]) == 0
    out = subprocess.run([CLI, "schema"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout == responses.schema_text(), out.stderr
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def session(**changes: object) -> SessionRecord:
    base: dict = {
        "id": str(uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "dagster_run_id": str(uuid.uuid4()),
        "sync_type": "backfill",
        "status": "failed",
        "current_phase": "storing",
        "time_range_start": None,
        "time_range_end": None,
        "total_activities_estimated": 10,
        "activities_fetched": 10,
        "activities_enriched": 8,
        "activities_stored": 0,
        "activities_updated": 0,
        "activities_skipped": 0,
        "activities_failed": 0,
        "error_count": 1,
        "progress": {},
        "last_error": None,
        "retry_count": 2,
        "last_successful_page": 1,
        "checkpoint_data": {},
        "started_at": None,
        "completed_at": None,
        "last_activity_at": None,
    }
    return SessionRecord(**{**base, **changes})


@pytest.mark.parametrize(
    ("last_error", "code", "retryable", "context"),
    [
        # the seed's ErrorReport, as the lead's change will store it
        (
            {
                "errorType": "network_error",
                "phase": "storing",
                "message": "connection reset",
                "context": {"apiEndpoint": "/athlete/activities", "httpStatus": 502},
                "timestamp": "2026-12-02T10:00:00+00:00",
            },
            "NETWORK_ERROR",
            True,
            {"apiEndpoint": "/athlete/activities", "httpStatus": 502, "retryCount": 2},
        ),
        # JSON text, and plain text
        ('{"type": "AUTHENTICATION", "message": "revoked", "retryable": false}',
         "AUTHENTICATION", False, {"retryCount": 2}),
        ("the database went away", "UNKNOWN", False, {"retryCount": 2}),
    ],
)  # fmt: skip
def test_last_error_is_read_whatever_its_shape(last_error, code, retryable, context) -> None:
    response = responses.sync_response(session(last_error=last_error))
    obj = json.loads(response.to_json())
    VALIDATOR.validate(obj)
    error = obj["error"]
    assert (error["code"], error["retryable"], error["phase"]) == (code, retryable, "storing")
    assert error["context"] == context
    assert obj["progress"]["phaseProgress"]["storing"]["status"] == "failed"
    assert obj["progress"]["phaseProgress"]["fetching"]["status"] == "completed"


def test_a_running_session_has_its_phase_in_progress_and_no_error() -> None:
    eta = "2026-12-02T10:05:00+00:00"
    running = session(
        status="fetching_activities",
        current_phase="fetching",
        total_activities_estimated=400,
        activities_fetched=200,
        progress={"processed": 200, "total": None, "estimated_completion": eta},
        last_error={"type": "RATE_LIMIT", "message": "an earlier failure"},  # retried since
    )
    obj = json.loads(responses.sync_response(running).to_json())
    VALIDATOR.validate(obj)
    assert obj["status"] == "fetching_activities" and "error" not in obj
    phases = obj["progress"]["phaseProgress"]
    assert phases["fetching"] == {"status": "in_progress", "processed": 200, "total": 400,
                                  "errors": 0}  # fmt: skip
    assert phases["enriching"]["status"] == phases["storing"]["status"] == "pending"
    assert obj["progress"]["processedActivities"] == 200
    assert obj["progress"]["estimatedCompletion"] == "2026-12-02T10:05:00Z"


def test_a_cancelled_session_reads_failed_with_code_cancelled() -> None:
    obj = json.loads(responses.sync_response(session(status="cancelled")).to_json())
    VALIDATOR.validate(obj)
    assert obj["status"] == "failed" and obj["error"]["code"] == "CANCELLED"


@pytest.fixture(params=["sqlite", "postgres"])
def env(request, sandbox, server, tmp_path: Path) -> dict[str, str]:
    """The CLI's environment on one backend: the embedded default, or PostgreSQL."""
    extra = {"STRAVA_MAX_WAIT_SECONDS": "1"}  # a spent budget fails the sync at once
    if request.param == "postgres":
        extra["DATABASE_URL"] = request.getfixturevalue("pg_url")
        extra["SYNC_ASSETS_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    return sandbox_env(sandbox, server, tmp_path / "home", **extra)


def connect(env: dict[str, str], sandbox, n_activities: int) -> tuple[str, str]:
    """A new athlete of `n_activities` over three months, connected; (user, first month)."""
    athlete = sandbox.add_athlete(n_activities=n_activities, years=0.25)
    user = str(uuid.uuid4())
    if "DATABASE_URL" in env:
        add_users(env["DATABASE_URL"], user)
    cli_connect(env, user, athlete.refresh_token)
    return user, sandbox.activities(athlete.athlete_id)[0]["start_date"][:7]


def test_sync_and_status_print_the_sync_response(env, sandbox) -> None:
    done_user, done_from = connect(env, sandbox, 60)
    failing_user, failing_from = connect(env, sandbox, 450)

    # A completed sync (2 activities Strava serves corrupt, quarantined): one object, stdout
    # holds only the JSON (the progress is on stderr).
    sandbox.set_faults(malformed_activities=2)
    out = run(env, "sync", "--user", done_user, "--from", done_from, "--json")
    sandbox.set_faults(malformed_activities=0)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "fetching: 60 activities" in out.stderr
    (done,) = objects(out)
    print("\ncompleted sync --json:\n" + json.dumps(done, indent=2))
    assert done["status"] == "completed" and "error" not in done
    assert done["userId"] == done_user
    failures = done["results"].pop("failedActivities")
    assert done["results"] == {"saved": 58, "updated": 0, "skipped": 0, "failed": 2}
    assert len(failures) == 2 and all(f["source"] == "validation" for f in failures)
    assert all(isinstance(f["stravaId"], int) and f["reason"] for f in failures)
    done["results"]["failedActivities"] = failures
    progress = done["progress"]
    assert progress["totalActivities"] == progress["processedActivities"] == 60
    assert progress["currentPhase"] == "completed"
    assert progress["phaseProgress"]["fetching"]["errors"] == 2
    for phase in ("fetching", "enriching", "storing"):
        p = progress["phaseProgress"][phase]
        assert p["status"] == "completed", phase
        assert p["startTime"] <= p["endTime"], phase
    assert progress["phaseProgress"]["fetching"]["processed"] == 60
    assert progress["phaseProgress"]["storing"]["processed"] == 60

    # A sync asked to skip the weather: completed, no weather requested.
    skip_user, skip_from = connect(env, sandbox, 40)
    out = run(env, "sync", "--user", skip_user, "--from", skip_from, "--skip-weather", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    (skipped,) = objects(out)
    print("skipped-weather sync --json:\n" + json.dumps(skipped, indent=2))
    assert skipped["status"] == "completed" and "error" not in skipped
    assert skipped["results"]["saved"] == 40
    enriching = skipped["progress"]["phaseProgress"]["enriching"]
    # Its step ran (place names) without asking for weather: no activity has weather.
    assert (enriching["status"], enriching["processed"]) == ("completed", 0)
    assert skipped["progress"]["phaseProgress"]["storing"]["processed"] == 40

    # A sync the app's Strava budget stops after one page: failed, RATE_LIMIT, retryable.
    usage = sandbox.usage()
    if usage["window_15min_resets_at"] - sandbox.now() < 30:  # a budget spent for long only
        time.sleep(max(usage["window_15min_resets_at"] - sandbox.now() + 1, 0))
        usage = sandbox.usage()
    read = usage["read_usage_15min"]
    sandbox.set_limits(RateLimits(read_15min=read + 1))
    out = run(env, "sync", "--user", failing_user, "--from", failing_from, "--json")
    assert out.returncode == 1, out.stdout + out.stderr
    (failed,) = objects(out)
    print("failed sync --json:\n" + json.dumps(failed, indent=2))
    assert failed["status"] == "failed" and failed["userId"] == failing_user
    error = failed["error"]
    assert (error["code"], error["retryable"], error["phase"]) == ("RATE_LIMIT", True, "fetching")
    assert "budget is spent" in error["message"]
    assert error["context"]["retryAfter"] and error["context"]["retryCount"] == 0
    fetching = failed["progress"]["phaseProgress"]["fetching"]
    assert fetching["status"] == "failed" and fetching["processed"] == 200
    assert failed["progress"]["phaseProgress"]["storing"]["status"] == "pending"
    assert failed["results"]["saved"] == 0

    # status --json --sync-id: the same objects, read back from the store by another process.
    for printed in (done, skipped, failed):
        out = run(env, "status", "--json", "--sync-id", printed["syncId"])
        assert out.returncode == 0, out.stderr
        assert objects(out) == [printed]
    # ... by the run's id: its users' sessions (one here).
    out = run(env, "status", "--json", "--sync-id", done["runId"])
    assert out.returncode == 0 and objects(out) == [done], out.stderr
    # Without --sync-id: the recent sessions, newest first, one object per line.
    out = run(env, "status", "--json")
    assert out.returncode == 0, out.stderr
    assert objects(out) == [failed, skipped, done]
    # The text view of one sync.
    out = run(env, "status", "--sync-id", failed["syncId"])
    assert out.returncode == 0 and "error: RATE_LIMIT (retryable" in out.stdout, out.stdout

    # An unknown sync: one line, non-zero; not a uuid: one line, exit 2.
    nobody = str(uuid.uuid4())
    out = run(env, "status", "--json", "--sync-id", nobody)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.strip() == f"error: no sync session or run with id {nobody}"
    out = run(env, "status", "--json", "--sync-id", "nope")
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1 and "not a uuid" in out.stderr
