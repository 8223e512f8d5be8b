"""After the demo, `sync-assets ui` opens Dagster on the demo's own data; what the UI launches
logs JSON; the health checks need no Strava secret.

The browser test runs a small demo (two athletes of a few hundred activities) in a child
process, then `sync-assets ui --home <its folder>`, and reads the partitions page and the
checks of `sync_health` in Debian's Chromium (Playwright, as `test_ui.py`): the demo's users and
materialized months, and evaluated checks, without any setting but the demo's folder. Its two
screenshots go to `$SYNC_ASSETS_TEST_ARTIFACTS/ui/demo-*.png` (default `test-artifacts/ui`).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import pytest
import yaml
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    build_sensor_context,
    in_process_executor,
)
from dagster._core.test_utils import in_process_test_workspace
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster_graphql.test.utils import execute_dagster_graphql
from playwright.sync_api import expect
from sync_assets_sandbox import StravaSandbox

from sync_assets.apps.demo_ui import (
    INSTANCE_SETTINGS,
    DemoSettings,
    add_demo_athlete,
    demo_user_id,
    load_demo_settings,
    restore_sandbox,
)
from sync_assets.assets.health import SYNC_HEALTH, health_checks, sync_health
from sync_assets.core import alerts
from sync_assets.core.storage import close_stores, open_store
from sync_assets.logs import sync_assets_logger
from sync_assets.resources import (
    ParquetIOManager,
    StravaResource,
    SupabaseResource,
    WeatherResource,
)
from sync_assets.sensors.alerts import sync_health_sensor

from .helpers import CHILD_ENV_DROPPED, CLI
from .helpers.ui import (
    REPO,
    DagsterDev,
    Shots,
    artifacts_dir,
    browser_page,
    dismiss_community_modal,
    require_chromium,
)

pytestmark = pytest.mark.timeout(300)

SEED, SIZES = 5, (120, 200)
CHECKS = (alerts.FAILURE_RATE, alerts.SLOW_SYNCS, alerts.API_QUOTA, alerts.DB_POOL)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would point a child elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(CHILD_ENV_DROPPED) and k != "DATABASE_URL"
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


# -- the browser: the demo's data in the UI ---------------------------------------------------
def test_after_the_demo_sync_assets_ui_shows_its_partitions_and_checks(tmp_path: Path) -> None:
    chromium = require_chromium()
    home = tmp_path / "demo"
    demo = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from sync_assets.apps.cli import demo; "
            f"sys.exit(demo(Path({str(home)!r}), sizes={SIZES!r}, seed={SEED}))",
        ],
        env=clean_env(SYNC_ASSETS_HOME=str(tmp_path / "elsewhere")),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert f"sync-assets ui --home {home}" in demo.stdout
    saved = load_demo_settings(home)
    users = [a.user_id for a in saved.athletes]
    assert users == [demo_user_id(SEED, i) for i in range(len(SIZES))]
    instance = DagsterInstance.from_config(str(home / "dagster"))
    try:
        months = {
            k for k in instance.get_materialized_partitions(AssetKey("raw_strava_activities"))
        }
    finally:
        instance.dispose()
    assert {m.split("|")[1] for m in months} == set(users)

    # Nothing set but the demo's folder: no Strava, no Dagster home in the environment.
    command = [str(CLI), "ui", "--home", str(home), "--port", "{port}"]
    with (
        DagsterDev(clean_env(), tmp_path / "ui.log", cwd=tmp_path, command=command) as dev,
        browser_page(chromium) as page,
    ):
        shot = Shots(page, artifacts_dir(), prefix="demo-")
        try:
            dev.wait_ready()
            # The partitions of the demo's months and users, materialized by the demo.
            page.goto(f"{dev.url}/assets/raw_strava_activities?view=partitions")
            expect(page.get_by_placeholder("Filter by user")).to_be_visible()
            dismiss_community_modal(page)
            expect(page.get_by_text(f"Materialized ({len(months)})")).to_be_visible()
            for user in users:
                expect(page.locator("body")).to_contain_text(user)
            shot("partitions")

            # The alerts, evaluated: each check shows a verdict, none "Not evaluated".
            page.goto(f"{dev.url}/assets/sync_health?view=checks")
            for name in CHECKS:
                expect(page.get_by_text(name, exact=True).first).to_be_visible()
            expect(page.get_by_text("Not evaluated")).to_have_count(0)
            expect(page.get_by_text("Passed").first).to_be_visible()
            shot("checks")
            verdicts = _check_verdicts(dev)
            assert set(verdicts) == set(CHECKS), verdicts
            assert all(v == "SUCCEEDED" for v in verdicts.values()), verdicts
        except BaseException:
            with contextlib.suppress(Exception):
                shot("failure")
            print(f"--- sync-assets ui output (end) ---\n{dev.log_tail()}")
            raise
    log = (tmp_path / "ui.log").read_text()
    assert "Strava and Open-Meteo sandboxes on http://127.0.0.1:" in log
    assert "STRAVA_CLIENT_ID is not set" not in log


def _check_verdicts(dev: DagsterDev) -> dict[str, str]:
    query = """
    {
      assetNodes(assetKeys: [{path: ["sync_health"]}]) {
        assetChecksOrError {
          ... on AssetChecks { checks { name executionForLatestMaterialization { status } } }
        }
      }
    }"""
    (node,) = dev.graphql(query)["assetNodes"]
    return {
        c["name"]: (c["executionForLatestMaterialization"] or {}).get("status")
        for c in node["assetChecksOrError"]["checks"]
    }


# -- the demo's athletes come back the same --------------------------------------------------
def test_the_demo_settings_bring_back_the_same_athletes() -> None:
    first = StravaSandbox(seed=SEED)
    records = [
        add_demo_athlete(first, index=i, activities=size, seed=SEED)[1]
        for i, size in enumerate(SIZES)
    ]
    first.set_clock(first.now() + 86_400 * 40)  # weeks later
    settings = DemoSettings(seed=SEED, sandbox_port=0, athletes=records)
    again, handles = restore_sandbox(settings)
    for record, handle in zip(records, handles, strict=True):
        assert again.activities(handle.athlete_id) == first.activities(record.athlete_id)
    # The restored sandbox runs on today's clock, its tokens new.
    assert abs(again.now() - first.now() + 86_400 * 40) < 60
    assert handles[0].refresh_token != first.athletes()[0]["refresh_token"]

    settings.athletes[1].last_activity_id = -1  # as if the generator had changed
    with pytest.raises(SystemExit, match="came out different"):
        restore_sandbox(settings)


def test_the_demo_instance_has_the_repositorys_settings() -> None:
    """`sync-assets ui` writes the repository's dagster.yaml settings (and the instance class
    of the JSON logs): a change there must reach the demo's instance too."""
    repo = yaml.safe_load((REPO / "dagster.yaml").read_text())
    for key, value in repo.items():
        assert INSTANCE_SETTINGS[key] == value, key
    assert INSTANCE_SETTINGS["instance_class"]["class"] == "JsonLogsInstance"


# -- what the UI launches logs JSON; the checks need no Strava secret -----------------------
HEALTH_HOME = Path(tempfile.gettempdir()) / f"sync-assets-health-{uuid.uuid4().hex[:8]}"
_supabase = SupabaseResource(database_url=None, data_dir=str(HEALTH_HOME))
# As `definitions.build_resources` builds them without STRAVA_CLIENT_ID / _SECRET.
health_defs = Definitions(
    assets=[sync_health],
    asset_checks=health_checks,
    sensors=[sync_health_sensor],
    resources={
        "supabase": _supabase,
        "strava": StravaResource(client_id="", client_secret="", supabase=_supabase),
        "weather": WeatherResource(),
    },
    loggers={"console": sync_assets_logger},
    executor=in_process_executor,
)

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId runConfigYaml } }
    ... on PythonError { message }
  }
}"""


def _instance_overrides(json_logs: bool) -> dict[str, object]:
    overrides: dict[str, object] = {
        "telemetry": {"enabled": False},
        # Launched at once, in this process: its stderr is this test's.
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "DefaultRunCoordinator",
        },
        "run_launcher": {
            "module": "dagster._core.launcher.sync_in_memory_run_launcher",
            "class": "SyncInMemoryRunLauncher",
        },
    }
    if json_logs:
        overrides["instance_class"] = INSTANCE_SETTINGS["instance_class"]
    return overrides


@pytest.mark.parametrize("json_logs", [True, False], ids=["instance-class", "without"])
def test_execute_checks_launched_as_the_ui_does_logs_json(
    json_logs: bool, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """ "Execute checks" on `sync_health`, sent as the UI sends it (GraphQL
    `launchPipelineExecution`, job `__ASSET_JOB`, run config `{}`), with STRAVA_CLIENT_ID unset:
    the run logs JSON lines (with the instance class; Dagster's text without it) and every
    check is evaluated, the quota check saying it skipped Strava."""
    monkeypatch.setenv("SYNC_ASSETS_LOG_LEVEL", "DEBUG")
    monkeypatch.delenv("STRAVA_CLIENT_ID", raising=False)
    origin = LoadableTargetOrigin(
        executable_path=sys.executable,
        module_name=__name__,
        attribute="health_defs",
        working_directory=str(REPO),
    )
    params: dict = {
        "mode": "default",
        "runConfigData": "{}",
        "executionMetadata": {"tags": []},
        "selector": {
            "repositoryName": "__repository__",
            "pipelineName": "__ASSET_JOB",
            "assetSelection": [],
            "assetCheckSelection": [
                {"assetKey": {"path": ["sync_health"]}, "name": name} for name in CHECKS
            ],
        },
    }
    try:
        with (
            DagsterInstance.local_temp(
                str(tmp_path), overrides=_instance_overrides(json_logs)
            ) as instance,
            in_process_test_workspace(instance, origin) as workspace,
        ):
            (params["selector"]["repositoryLocationName"],) = workspace.code_location_names
            capfd.readouterr()
            result = execute_dagster_graphql(workspace, LAUNCH, {"params": params})
            launched = result.data["launchPipelineExecution"]
            assert launched["__typename"] == "LaunchRunSuccess", launched
            run_id = launched["run"]["runId"]
            err = capfd.readouterr().err
            run = instance.get_run_by_id(run_id)
            assert run.is_success, (
                run.status,
                err[-3000:],
                [(e.dagster_event_type, e.message) for e in instance.all_logs(run_id)][-8:],
            )
            evaluations = {
                e.dagster_event.asset_check_evaluation_data.check_name: (
                    e.dagster_event.asset_check_evaluation_data
                )
                for e in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
            }
    finally:
        close_stores()
    assert set(evaluations) == set(CHECKS)
    quota = evaluations[alerts.API_QUOTA]
    assert quota.passed and "Strava not evaluated: STRAVA_CLIENT_ID is not set" in (
        quota.description
    )
    lines = [line for line in err.splitlines() if line.strip()]
    if not json_logs:  # Dagster's colored console: what the instance class is for
        assert run.run_config == {}
        assert not any(line.startswith("{") for line in lines)
        assert any(f" - {run_id} - " in line and "RUN_START" in line for line in lines)
        return
    assert run.run_config == {"loggers": {"console": {}}}  # what the run page shows
    records = []
    for line in lines:
        record = json.loads(line)  # every line: not one in Dagster's text format
        assert record["run_id"] == record["sync_id"] == run_id, record
        assert record["job"] == "__ASSET_JOB", record
        records.append(record)
    events = Counter(r.get("event_type") for r in records)
    assert events["RUN_START"] == events["RUN_SUCCESS"] == 1, events
    assert events["ASSET_CHECK_EVALUATION"] == len(CHECKS), events


def test_the_health_sensor_ticks_without_strava_client_id(tmp_path: Path, monkeypatch) -> None:
    """The code location's own resources with neither STRAVA_CLIENT_ID nor the secret set:
    the sensor's tick evaluates every alert; the quota alert evaluates the weather half and
    says it skipped Strava's."""
    for name in ("STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SYNC_ASSETS_HOME", str(tmp_path / "home"))
    from sync_assets.definitions import build_resources

    resources = build_resources()
    assert resources["strava"].client_id == ""
    defs = Definitions(
        assets=[sync_health],
        asset_checks=health_checks,
        sensors=[sync_health_sensor],
        resources=resources,
    )
    instance = DagsterInstance.ephemeral()
    try:
        with build_sensor_context(
            instance=instance, resources=resources, definitions=defs
        ) as context:
            tick = sync_health_sensor(context)
    finally:
        close_stores()
    verdicts = {e.check_name: e for e in tick.asset_events}
    assert set(verdicts) == set(CHECKS)
    assert all(e.asset_key == SYNC_HEALTH and e.passed for e in verdicts.values())
    quota = verdicts[alerts.API_QUOTA]
    assert quota.description.startswith("all under 80%; highest: weather")
    assert quota.description.endswith("; Strava not evaluated: STRAVA_CLIENT_ID is not set")
    assert quota.metadata["strava_skipped"].value == "STRAVA_CLIENT_ID is not set"
    assert "strava_read_15_min" not in quota.metadata


def test_a_sync_without_strava_credentials_fails_saying_which(tmp_path: Path) -> None:
    """What the missing variables cost instead: the fetch refuses, naming them."""
    from dagster import materialize

    from sync_assets.assets import raw_strava_activities
    from sync_assets.partitions import USERS_PARTITIONS_NAME

    supabase = SupabaseResource(database_url=None, data_dir=str(tmp_path))
    user = str(uuid.uuid4())
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user])
    try:
        result = materialize(
            [raw_strava_activities],
            instance=instance,
            resources={
                "strava": StravaResource(client_id="", client_secret="", supabase=supabase),
                "supabase": supabase,
                "parquet_io_manager": ParquetIOManager(base_path=str(tmp_path / "parquet")),
            },
            partition_key=f"2024-01-01|{user}",
            raise_on_error=False,
        )
    finally:
        close_stores()
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.user_failure_data.description
    assert "STRAVA_CLIENT_ID and STRAVA_CLIENT_SECRET are not set" in message
    assert open_store(None, tmp_path).recent_sessions() == []  # nothing started
