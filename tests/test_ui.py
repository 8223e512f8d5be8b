"""The Dagster UI in a real browser: what a person sees and does after `dagster dev`.

`dagster dev -w workspace.yaml` (webserver, daemon, code server) runs on the embedded default
(SQLite + Parquet in temporary folders) against the Strava and Open-Meteo sandboxes; one
sandbox athlete is connected with `sync-assets connect`. Playwright drives Debian's Chromium
through the asset graph, the partitions page, a backfill of one user's year launched from the
Materialize dialog, the JSON lines its run logged (launched without run config, it gets the
JSON logger from the instance class `sync_assets.logs.JsonLogsInstance`), and the metadata that
backfill left: each month's own counts and the run's figures under `run_` keys. A screenshot
of each step goes to `$SYNC_ASSETS_TEST_ARTIFACTS/ui` (default `test-artifacts/ui`).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import AssetKey, DagsterInstance
from playwright.sync_api import Locator, Page, expect
from sync_assets_sandbox import SandboxServer, StravaSandbox

from sync_assets.apps.demo_ui import INSTANCE_SETTINGS
from sync_assets.core.ingest import minimum_list_calls
from sync_assets.core.storage import close_stores, open_store
from sync_assets.partitions import month_key

from .helpers import cli_connect, sandbox_env
from .helpers.ui import (
    REPO,
    DagsterDev,
    Shots,
    artifacts_dir,
    browser_page,
    dismiss_community_modal,
    require_chromium,
)

# The run worker starts Python and Dagster anew, and the backfill daemon looks at a backfill
# only every 30 s: a backfill of one run takes about a minute from launch to "completed".
pytestmark = pytest.mark.timeout(420)

USER = "7d3f1c2a-5b6e-4f80-9a1b-2c3d4e5f6a70"
ASSETS = ("raw_strava_activities", "weather_enriched_activities", "runs_table")
BACKFILL_TIMEOUT_S = 240
GROUP_URL = "{}/locations/sync_assets/asset-groups/strava"


def last_twelve_months(now: float) -> list[str]:
    """The month keys of the 12 complete months before the current one, oldest first."""
    current = datetime.fromtimestamp(now, UTC)
    months = []
    year, month = current.year, current.month
    for _ in range(12):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        months.append(f"{year}-{month:02d}-01")
    return months[::-1]


def metadata_value(page: Page, label: str) -> Locator:
    """The value cell of the metadata table's row whose key is exactly `label` (a real table:
    key, timestamp, value)."""
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=label, exact=True))
    return row.get_by_role("cell").last


def list_row(page: Page, anchor: Locator, text: str) -> Locator:
    """The innermost element holding both `anchor` and `text`: a row of the UI's virtualized
    lists, which are `div`s without a table role."""
    return page.locator("div").filter(has=anchor).filter(has_text=text).last


def test_backfill_of_one_users_year_from_the_ui(tmp_path: Path) -> None:
    chromium = require_chromium()  # first: a missing browser fails at once, and says why
    shots_dir = artifacts_dir()
    home, dagster_home = tmp_path / "data", tmp_path / "dagster_home"
    dagster_home.mkdir()
    # The repository's instance settings, with the instance class that makes runs launched
    # from the UI log JSON (README, "Logs"), as `sync-assets ui` writes them.
    settings = yaml.safe_load((REPO / "dagster.yaml").read_text())
    assert settings["instance_class"] == INSTANCE_SETTINGS["instance_class"]
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    sandbox = StravaSandbox(seed=4321)
    with SandboxServer(sandbox) as server:
        athlete = sandbox.add_athlete(n_activities=300, seed=17, years=1.1)
        # Every Dagster event in the run's JSON lines, to see that each is JSON.
        env = sandbox_env(
            sandbox, server, home, DAGSTER_HOME=str(dagster_home), SYNC_ASSETS_LOG_LEVEL="DEBUG"
        )
        # Before the UI starts: both would create the instance's SQLite tables at once.
        cli_connect(env, USER, athlete.refresh_token)

        months = last_twelve_months(sandbox.now())
        in_window = [
            a
            for a in sandbox.activities(athlete.athlete_id)
            if months[0] <= month_key(datetime.fromisoformat(a["start_date"])) <= months[-1]
        ]
        assert 150 < len(in_window) < 400  # a year of a few hundred activities

        with DagsterDev(env, tmp_path / "dagster-dev.log") as dev, browser_page(chromium) as page:
            shot = Shots(page, shots_dir)
            try:
                dev.wait_ready()
                _drive_the_ui(page, shot, dev, months, len(in_window))
            except BaseException:
                with contextlib.suppress(Exception):  # the page as it was, if it still is
                    shot("failure")
                print(f"--- dagster dev output (end) ---\n{dev.log_tail()}")
                raise

        # What the UI showed is what the instance and the database hold.
        instance = DagsterInstance.from_config(str(dagster_home))
        try:
            expected = {f"{m}|{USER}" for m in months}
            for asset in ASSETS:
                assert instance.get_materialized_partitions(AssetKey(asset)) == expected, asset
        finally:
            instance.dispose()
        try:
            stored = open_store(None, home).run_ids(USER)
        finally:
            close_stores()
        assert sorted(stored) == sorted(a["id"] for a in in_window)


def _drive_the_ui(
    page: Page, shot: Shots, dev: DagsterDev, months: list[str], n_activities: int
) -> None:
    """The steps a person takes, each checked on the page and saved as a screenshot."""
    # a. The asset graph of the group "strava" shows the three assets (once the code location
    # has loaded). The group's page, not the global graph: other groups may hold other assets.
    page.goto(GROUP_URL.format(dev.url))
    for asset in ASSETS:
        expect(page.get_by_text(asset, exact=True).first).to_be_visible()
    dismiss_community_modal(page)
    shot("asset-graph")

    # b. The partitions page: two dimensions, months x users, the connected user among them.
    page.goto(f"{dev.url}/assets/raw_strava_activities?view=partitions")
    expect(page.get_by_placeholder("Filter by month")).to_be_visible()
    expect(page.get_by_placeholder("Filter by user")).to_be_visible()
    expect(page.get_by_text(months[0], exact=True).first).to_be_visible()
    expect(page.get_by_text(months[-1], exact=True).first).to_be_visible()
    expect(page.locator("body")).to_contain_text(USER)  # the list truncates it in the middle
    shot("partitions-before")

    # c. Materialize all -> the partition dialog: this user, 12 months -> launch the backfill.
    page.goto(GROUP_URL.format(dev.url))
    page.get_by_role("button", name="Materialize all").click()
    dialog = page.get_by_role("dialog").filter(has_text="Partition selection")
    expect(dialog.get_by_text("Launch runs to materialize 3 assets")).to_be_visible()
    dialog.get_by_text("Select a partition or create one").first.click()
    page.get_by_placeholder("Filter partitions").fill(USER)
    page.locator("label").filter(has_text=USER).click()  # its checkbox (the input is hidden)
    dialog.get_by_text("Launch runs to materialize").click()  # closes the user list
    expect(page.get_by_placeholder("Filter partitions")).to_be_hidden()
    expect(dialog.get_by_text("Select a partition or create one")).to_have_count(0)
    # The month range: the slider is drag-only, its text field takes Dagster's range syntax.
    month_field = dialog.get_by_placeholder(re.compile(r"^ex: \d{4}-\d{2}-\d{2}"))
    month_field.fill(f"[{months[0]}...{months[-1]}]")
    month_field.press("Enter")
    expect(dialog.get_by_text("12 partitions", exact=True)).to_be_visible()
    shot("materialize-dialog")
    dialog.get_by_text("Preview", exact=True).click()
    preview = page.get_by_role("dialog").filter(has_text="Backfill preview")
    expect(preview.get_by_text("Backfills all partitions in a single run")).to_have_count(3)
    shot("backfill-preview")
    preview.get_by_role("button", name="OK").click()
    dialog.get_by_role("button", name="Launch backfill").click()
    toast = page.get_by_text(re.compile(r"Created backfill \w+"))
    expect(toast).to_be_visible()
    backfill_id = re.search(r"Created backfill (\w+)", toast.inner_text()).group(1)
    shot("backfill-launched")

    # The backfill daemon completes it; the backfills page says so.
    backfill = _wait_for_backfill(dev, backfill_id)
    assert backfill["status"] == "COMPLETED_SUCCESS", _run_report(dev, backfill)
    assert backfill["numPartitions"] == 12
    runs = backfill["runs"]
    assert [r["status"] for r in runs] == ["SUCCESS"], runs  # single-run backfill policy
    tags = {t["key"]: t["value"] for t in runs[0]["tags"]}
    assert tags["dagster/asset_partition_range_start"] == f"{months[0]}|{USER}"
    assert tags["dagster/asset_partition_range_end"] == f"{months[-1]}|{USER}"
    check_the_run_logged_json(dev, runs[0]["id"])
    page.goto(f"{dev.url}/overview/backfills")
    row = list_row(page, page.get_by_role("link", name=backfill_id), "12 partitions")
    expect(row).to_contain_text("Success")
    shot("backfills-completed")
    page.goto(f"{dev.url}/runs/b/{backfill_id}")
    for asset in ASSETS:
        link = page.locator(f'a[href="/assets/{asset}"]')
        expect(list_row(page, link, "100% completed")).to_be_visible()
    shot("backfill-detail")

    page.goto(f"{dev.url}/assets/raw_strava_activities?view=partitions")
    expect(page.get_by_text("Materialized (12)")).to_be_visible()
    shot("partitions-after")

    # d. The materialization's metadata on the asset pages.
    minimum = minimum_list_calls(n_activities)
    page.goto(f"{dev.url}/assets/raw_strava_activities")
    # The run's figures (`run_` keys) beside the month's own counts.
    expected_raw = {
        "run_activities": n_activities,
        "run_partitions": 12,
        "run_list_requests": minimum,  # one paginated query for the whole year
        "run_list_requests_minimum": minimum,
    }
    for label, value in expected_raw.items():
        expect(metadata_value(page, label)).to_have_text(str(value))
    expect(metadata_value(page, "activities")).to_have_text(re.compile(r"^\d+$"))
    shot("raw-strava-activities-metadata")
    page.goto(f"{dev.url}/assets/runs_table")
    expect(metadata_value(page, "run_saved")).to_have_text(str(n_activities))
    # Markdown, rendered as a table nested in the metadata table's row.
    phases = page.get_by_role("row").filter(
        has=page.get_by_role("cell", name="run_phase_timings", exact=True)
    )
    for phase in ("fetch (Strava)", "enrich (places, weather)", "store (runs)", "total"):
        expect(phases.first.get_by_role("cell", name=phase, exact=True)).to_be_visible()
    shot("runs-table-metadata")


def check_the_run_logged_json(dev: DagsterDev, run_id: str) -> None:
    """The backfill's run, launched from the UI without run config, logged JSON lines: its
    events and messages are JSON objects of the run, and no line of it is in Dagster's text
    format but the one the multiprocess executor writes with its own logger for each step
    process it starts (STEP_WORKER_STARTED, before the run's loggers exist there)."""
    records, text = [], []
    for line in dev.log_tail(chars=10**8).splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("run_id") == run_id:
                records.append(record)
        elif f" - {run_id} - " in line:  # Dagster's console format names the run so
            text.append(line)
    events = {r.get("event_type") for r in records}
    assert {"RUN_START", "STEP_START", "ASSET_MATERIALIZATION", "RUN_SUCCESS"} <= events, events
    assert all(r["sync_id"] == run_id and r["job"] == "__ASSET_JOB" for r in records)
    assert all(" - STEP_WORKER_STARTED - " in line for line in text), text


def _run_report(dev: DagsterDev, backfill: dict[str, Any]) -> str:
    """What the backfill's runs did, from their event logs: every error (a failed step's, or
    the run worker's own, e.g. the code location did not load) and the last messages."""
    query = """
    query RunEvents($id: ID!) {
      logsForRun(runId: $id) {
        ... on EventConnection {
          events {
            __typename
            ... on MessageEvent { message }
            ... on ErrorEvent { error { message } }
            ... on EngineEvent { error { message } }
          }
        }
      }
    }"""
    lines = [f"backfill {backfill['id']}: {backfill['status']}"]
    for run in backfill["runs"]:
        lines.append(f"run {run['id']}: {run['status']}")
        events = dev.graphql(query, {"id": run["id"]})["logsForRun"].get("events", [])
        for i, event in enumerate(events):
            error = (event.get("error") or {}).get("message") or ""
            if error or i >= len(events) - 5:
                lines.append(f"  {event['__typename']}: {event.get('message')} {error}"[:3000])
    return "\n".join(lines)


def _wait_for_backfill(dev: DagsterDev, backfill_id: str) -> dict[str, Any]:
    """Poll the backfill over GraphQL (the UI's API) until it leaves REQUESTED (in progress)."""
    query = """
    query Backfill($id: String!) {
      partitionBackfillOrError(backfillId: $id) {
        __typename
        ... on PartitionBackfill {
          id status numPartitions
          runs(limit: 50) { id status tags { key value } }
        }
        ... on PythonError { message }
      }
    }"""
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    while True:
        result = dev.graphql(query, {"id": backfill_id})["partitionBackfillOrError"]
        assert result["__typename"] == "PartitionBackfill", result
        if result["status"] not in ("REQUESTED", "CANCELING"):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not done in {BACKFILL_TIMEOUT_S} s: {_run_report(dev, result)}")
        time.sleep(2)
