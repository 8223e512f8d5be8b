"""Structured run logs (`sync_assets.logs`): `sync-assets sync` and `enrich` as users run them
(separate processes, the embedded default, the bundled Strava and weather sandboxes), and a
real Dagster re-execution.

What "every line of a run" means here: a `sync-assets sync|enrich` process runs exactly one
Dagster run, in process, and writes its summary to stdout; its stderr holds only what that
run's loggers wrote. So the test takes every line of the child's stderr, without filtering,
and requires each to be a JSON object of that run: `sync_id` = the session's
`sync_sessions.dagster_run_id`, `run_id` = the run's id. (The CLI's run config asks the
console logger for warnings only; `SYNC_ASSETS_LOG_LEVEL=DEBUG` lets every event through.)
"""

import json
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    Definitions,
    OpExecutionContext,
    execute_job,
    in_process_executor,
    job,
    op,
    reconstructable,
)
from dagster._core.execution.api import execute_run
from dagster._core.execution.plan.resume_retry import ReexecutionStrategy
from dagster._core.test_utils import in_process_test_workspace
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from sync_assets_sandbox import SandboxServer, StravaSandbox

from sync_assets.core.sessions import session_key
from sync_assets.core.storage import open_store
from sync_assets.logs import sync_assets_logger

from .helpers import CLI, cli_connect, sandbox_env

pytestmark = pytest.mark.timeout(180)


def json_lines(stderr: str) -> list[dict]:
    """Every line of `stderr`, each required to be one JSON object."""
    lines = stderr.splitlines()
    assert lines, "nothing was logged"
    parsed = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"a line of the run is not JSON: {line!r}")
        assert isinstance(record, dict), line
        parsed.append(record)
    return parsed


def check_common_fields(records: list[dict], *, sync_id: str, run_id: str, job_name: str) -> None:
    for r in records:
        assert r["sync_id"] == sync_id, r
        assert r["run_id"] == run_id, r
        assert r["job"] == job_name, r
        assert r["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), r
        assert isinstance(r["msg"], str), r
        ts = datetime.fromisoformat(r["ts"])
        assert ts.utcoffset() is not None and ts.utcoffset().total_seconds() == 0, r


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple]:
    sandbox = StravaSandbox(seed=11)
    with SandboxServer(sandbox) as server:
        athlete = sandbox.add_athlete(n_activities=150, years=1.0)
        # The embedded default, the default format; every event, not the CLI's warnings only.
        env = sandbox_env(sandbox, server, tmp_path / "home", SYNC_ASSETS_LOG_LEVEL="DEBUG")
        user = str(uuid.uuid4())
        cli_connect(env, user, athlete.refresh_token)
        first = sandbox.activities(athlete.athlete_id)[0]["start_date"][:7]
        yield sandbox, env, user, athlete, first


def test_every_line_of_a_cli_sync_is_json_with_the_sync_id(world) -> None:
    """With `--quiet` (no progress lines beside them), stderr is the run's JSON log alone."""
    sandbox, env, user, athlete, first = world
    out = subprocess.run(
        [CLI, "sync", "--user", user, "--from", first, "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "150 activities" in out.stdout
    store = open_store(None, env["SYNC_ASSETS_HOME"])
    (session,) = store.recent_sessions(user)
    sync_id = session.dagster_run_id
    assert f"run {sync_id[:8]}" in out.stdout  # a first run is its own root

    records = json_lines(out.stderr)
    check_common_fields(records, sync_id=sync_id, run_id=sync_id, job_name="strava_sync")
    events = Counter(r.get("event_type") for r in records)
    for kind in ("RUN_START", "STEP_START", "ASSET_MATERIALIZATION", "STEP_SUCCESS"):
        assert events[kind] >= 1, events
    assert events["RUN_SUCCESS"] == 1, events
    assert events["STEP_START"] == 3, events  # fetch, weather, store
    steps = {r["step_key"] for r in records if "step_key" in r}
    assert steps == {"raw_strava_activities", "weather_enriched_activities", "runs_table"}
    # The assets' own messages (no Dagster event) carry the same ids and their step.
    said = [r for r in records if "event_type" not in r]
    assert said and all("step_key" in r for r in said)
    assert any("150 activities" in r["msg"] for r in said)
    # A run over one user's months: every line names the user and the run's range.
    assert all(r.get("user") == user for r in records)
    assert all(r["partition_range"][0] == f"{first}-01|{user}" for r in records)
    materialized = [r for r in records if r.get("event_type") == "ASSET_MATERIALIZATION"]
    assert all(r["partition"].endswith(f"|{user}") and r["asset"] for r in materialized)

    tokens = store.get(user).tokens
    secrets = {
        "client secret": sandbox.client_secret,
        "first refresh token": athlete.refresh_token,
        "first access token": athlete.access_token,
        "refresh token": tokens.refresh_token.get_secret_value(),
        "access token": tokens.access_token.get_secret_value(),
    }
    for what, value in secrets.items():
        assert value not in out.stderr and value not in out.stdout, what

    # The other job: `enrich` is a run (and a session) of its own.
    out = subprocess.run(
        [CLI, "enrich", "--user", user, "--from", first, "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    newest = store.recent_sessions(user)[0]
    assert newest.dagster_run_id != sync_id
    records = json_lines(out.stderr)
    check_common_fields(
        records,
        sync_id=newest.dagster_run_id,
        run_id=newest.dagster_run_id,
        job_name="weather_enrichment",
    )
    assert {r.get("event_type") for r in records} >= {"RUN_START", "RUN_SUCCESS"}


# -- a re-execution logs its root run's sync id -----------------------------------------------
@op
def flaky(context: OpExecutionContext) -> None:
    context.log.info("working")
    if context.run.parent_run_id is None:
        raise RuntimeError("the first attempt fails")


@job(logger_defs={"console": sync_assets_logger}, executor_def=in_process_executor)
def flaky_job() -> None:
    flaky()


logs_test_defs = Definitions(jobs=[flaky_job])


def test_a_re_execution_logs_the_sync_id_of_its_root_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-executions made as the UI's "Re-execute" and Dagster's run-retry daemon make them
    (`create_reexecuted_run`: parent's tags and config, `dagster/root_run_id`), run in process."""
    monkeypatch.setenv("SYNC_ASSETS_LOG_LEVEL", "DEBUG")
    recon = reconstructable(flaky_job)
    origin = LoadableTargetOrigin(
        executable_path=sys.executable,
        module_name=__name__,
        attribute="logs_test_defs",
        working_directory=str(Path(__file__).parents[1]),
    )
    overrides = {"telemetry": {"enabled": False}}
    with (
        DagsterInstance.local_temp(str(tmp_path), overrides=overrides) as instance,
        in_process_test_workspace(instance, origin) as workspace,
    ):
        (location_name,) = workspace.code_location_names
        location = workspace.get_code_location(location_name)
        remote_job = location.get_repository("__repository__").get_full_job("flaky_job")

        def re_execute(parent_run_id: str, strategy: ReexecutionStrategy):  # noqa: ANN202
            run = instance.create_reexecuted_run(
                request_context=workspace,
                parent_run=instance.get_run_by_id(parent_run_id),
                code_location=location,
                remote_job=remote_job,
                strategy=strategy,
                use_parent_run_tags=True,
            )
            return execute_run(recon, run, instance)

        capsys.readouterr()
        root = execute_job(recon, instance, run_config={"loggers": {"console": {}}})
        assert not root.success
        first_lines = json_lines(capsys.readouterr().err)
        retry = re_execute(root.run_id, ReexecutionStrategy.FROM_FAILURE)
        assert retry.success
        retry_lines = json_lines(capsys.readouterr().err)
        again = re_execute(retry.run_id, ReexecutionStrategy.ALL_STEPS)  # of the re-execution
        assert again.success
        again_lines = json_lines(capsys.readouterr().err)
        for run in (retry, again):
            tags = instance.get_run_by_id(run.run_id).tags
            assert session_key(tags, run.run_id) == root.run_id  # the sessions' key
    for run, lines in ((root, first_lines), (retry, retry_lines), (again, again_lines)):
        check_common_fields(lines, sync_id=root.run_id, run_id=run.run_id, job_name="flaky_job")
        assert any(r.get("event_type") == "STEP_START" for r in lines)
        assert any(r["msg"] == "working" and r["step_key"] == "flaky" for r in lines)
    failure = [r for r in first_lines if r.get("event_type") == "STEP_FAILURE"]
    assert failure and "the first attempt fails" in failure[0]["error"]
    assert failure[0]["level"] == "ERROR"
    now = datetime.now(UTC)
    for r in first_lines + retry_lines + again_lines:
        assert abs((now - datetime.fromisoformat(r["ts"])).total_seconds()) < 120, r


def test_the_format_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from sync_assets.definitions import build_loggers

    monkeypatch.delenv("SYNC_ASSETS_LOG_FORMAT", raising=False)
    assert build_loggers() == {"console": sync_assets_logger}
    monkeypatch.setenv("SYNC_ASSETS_LOG_FORMAT", "text")
    assert build_loggers() is None  # Dagster's colored console logger
    monkeypatch.setenv("SYNC_ASSETS_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="json or text"):
        build_loggers()
