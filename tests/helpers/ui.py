"""Helpers of the browser tests (`test_ui.py`, `test_demo_ui.py`): `dagster dev` (or
`sync-assets ui`) as a subprocess, Debian's Chromium, numbered screenshots.

Kept apart from the tests so they read as the steps a person takes in the UI.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
from playwright.sync_api import Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

REPO = Path(__file__).resolve().parents[2]  # tests/helpers/ui.py -> the repository
CHROMIUM = Path("/usr/bin/chromium")
UI_TIMEOUT_MS = 60_000  # a first page load takes seconds on 2 shared cores; be generous
# No sandbox (CI runs as root), no GPU, and nothing that reaches beyond the machine.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# `dagster dev` is started through this shim (it becomes `dagster dev`, same pid): a shell that
# runs jobs in the background (CI may) leaves SIGINT ignored, an ignored signal stays ignored
# across exec, and dagster dev maps SIGTERM to SIGINT's handler, so SIGTERM would do nothing.
# (A `preexec_fn` would do the same, but is unsafe with the sandbox's threads running.)
_EXEC_WITH_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def free_port() -> int:
    """A loopback port free right now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def artifacts_dir() -> Path:
    """`$SYNC_ASSETS_TEST_ARTIFACTS/ui` (default `test-artifacts/ui` in the repo): screenshots."""
    base = os.environ.get("SYNC_ASSETS_TEST_ARTIFACTS") or str(REPO / "test-artifacts")
    path = Path(base) / "ui"
    path.mkdir(parents=True, exist_ok=True)
    return path


def require_chromium() -> Path:
    """Debian's Chromium, which Playwright drives (no browser download). Missing is a failure:
    the install scripts (`scripts/_venv.sh`) put it there."""
    if not CHROMIUM.exists():
        raise AssertionError(
            f"{CHROMIUM} is missing: the UI test drives Debian's Chromium. Install it with "
            "`apt-get install --no-install-recommends chromium` (scripts/_venv.sh does so as root)."
        )
    return CHROMIUM


class DagsterDev:
    """`dagster dev -w workspace.yaml` (webserver, daemon, code server) in its own process group,
    so that stopping it stops every process it started, run workers included. `command`: what
    starts it instead (e.g. `sync-assets ui --port PORT`, `{port}` filled in)."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        cwd: Path = REPO,
        command: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env, self._cwd, self._log_path = env, cwd, log_path
        self._command = [arg.format(port=self.port) for arg in command] if command else None
        self._log: IO[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DagsterDev:
        dagster = Path(sys.executable).with_name("dagster")
        self._log = self._log_path.open("wb")
        args = ["dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(
            self._command or [sys.executable, "-c", _EXEC_WITH_SIGINT, str(dagster), *args],
            cwd=self._cwd,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the processes' output, for failure messages."""
        try:
            return self._log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 120) -> None:
        """Poll `/server_info` until the webserver answers (it starts in a few seconds; the
        code location may load later, which the pages' own waits cover)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"dagster dev exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/server_info", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"dagster dev did not answer in {timeout:.0f} s:\n{self.log_tail()}")

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """One GraphQL request to the webserver (the API the UI itself uses)."""
        resp = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
        )
        resp.raise_for_status()
        body = resp.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def stop(self, grace: float = 15) -> None:
        """SIGTERM to `dagster dev` (it shuts its services down), then SIGKILL to whatever of
        its group is left after `grace` seconds: code servers and run workers included."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
            _signal_group(proc.pid, signal.SIGKILL)  # children that outlived the parent too
            proc.wait(timeout=30)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> DagsterDev:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


class Shots:
    """Numbered full-page screenshots, so the artifacts read as the steps in order; `prefix`
    keeps one test's pictures apart from another's in the same folder."""

    def __init__(self, page: Page, folder: Path, prefix: str = "") -> None:
        self.page, self.folder, self.prefix, self.count = page, folder, prefix, 0
        for old in folder.glob(f"{prefix}[0-9][0-9]-*.png"):
            old.unlink()  # a previous run's pictures would mislead

    def __call__(self, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.prefix}{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextmanager
def browser_page(chromium: Path) -> Iterator[Page]:
    """A page of Debian's Chromium (Playwright downloads no browser here)."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            # The UI scrolls inside its own panes, so a "full page" is the viewport: a tall one.
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def dismiss_community_modal(page: Page) -> None:
    """A fresh instance greets the first visitor with "Join the Dagster community": skip it,
    now if it shows within a few seconds, and whenever it covers what the test clicks later."""
    skip = page.get_by_role("button", name="Skip")
    page.add_locator_handler(
        page.get_by_text("Join the Dagster community"), lambda _: skip.click(), times=1
    )
    with contextlib.suppress(PlaywrightTimeout):  # not shown: nothing to dismiss
        skip.wait_for(state="visible", timeout=5_000)
        skip.click()
