"""The sandbox is its own distribution (`sandbox/`, `sync-assets-sandbox`), not in the main one.

Without it, the commands that need it (`sandbox`, `demo`, `ui`) say in one line how to install
it, and every other command (and the Dagster definitions: production installs go without it)
works. With it, `python -m sync_assets_sandbox` serves it as `sync-assets sandbox` does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL_LINE = "error: the sandbox is not installed: pip install -e ./sandbox (from the repository)"
# The real CLI in a child process with the sandbox unimportable, as on a production install.
WITHOUT_SANDBOX = (
    "import sys; sys.modules['sync_assets_sandbox'] = None; "
    "from sync_assets.apps.cli import main; sys.exit(main())"
)


def child_env(home: Path) -> dict[str, str]:
    """The embedded default in `home`: nothing of this process's database or Dagster."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DAGSTER_", "SYNC_ASSETS_", "STRAVA_", "WEATHER_", "DATABASE_"))
    }
    env.update(SYNC_ASSETS_HOME=str(home), DAGSTER_HOME=str(home / "dagster"))
    return env


def without_sandbox(argv: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_SANDBOX, *argv],
        env=child_env(home),
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["sandbox"],
        ["sandbox", "--port", "0", "--list-order", "newest-first-always"],
        ["demo", "--home", "{demo}"],
        ["ui", "--home", "{demo}", "--port", "0"],
    ],
    ids=["sandbox", "sandbox with options", "demo", "ui"],
)
def test_commands_that_need_the_sandbox_say_how_to_install_it(
    argv: list[str], tmp_path: Path
) -> None:
    demo = tmp_path / "demo"
    out = without_sandbox([a.format(demo=demo) for a in argv], tmp_path / "home")
    assert out.returncode != 0
    assert out.stderr.splitlines() == [INSTALL_LINE]
    assert "Traceback" not in out.stderr
    assert out.stdout == ""
    assert not demo.exists()  # the demo removes nothing and starts nothing


def test_other_commands_work_without_the_sandbox(tmp_path: Path) -> None:
    home = tmp_path / "home"
    helped = without_sandbox(["status", "--help"], home)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: sync-assets status")
    assert helped.stderr == ""
    listed = without_sandbox(["--help"], home)
    assert listed.returncode == 0, listed.stderr
    assert "sandbox" in listed.stdout and "status" in listed.stdout
    sandbox_help = without_sandbox(["sandbox", "--help"], home)
    assert sandbox_help.returncode == 0, sandbox_help.stderr
    assert "pip install -e ./sandbox" in " ".join(sandbox_help.stdout.split())
    status = without_sandbox(["status"], home)
    assert status.returncode == 0, status.stderr
    assert status.stdout.strip() == "no sync session yet"
    assert "Traceback" not in status.stderr


def test_the_dagster_definitions_load_without_the_sandbox(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['sync_assets_sandbox'] = None; "
        "from sync_assets.definitions import defs; print(type(defs).__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(tmp_path / "home"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Definitions"


def found_packages(include: list[str], exclude: list[str]) -> list[str]:
    """What `[tool.setuptools.packages.find]` picks (namespace discovery: every folder of
    Python files, by dotted name, through fnmatch as setuptools matches them)."""
    names = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__")) and d != "test-artifacts"]
        if folder != str(ROOT) and any(f.endswith(".py") for f in files):
            names.append(".".join(Path(folder).relative_to(ROOT).parts))
    return [
        n
        for n in names
        if any(fnmatchcase(n, p) for p in include) and not any(fnmatchcase(n, p) for p in exclude)
    ]


def test_the_main_distribution_leaves_the_sandbox_out() -> None:
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"][
        "find"
    ]
    include, exclude = find["include"], find.get("exclude", [])
    packages = found_packages(include, exclude)
    for name in ("sync_assets_sandbox", "sandbox", "sandbox.src.sync_assets_sandbox"):
        assert not any(fnmatchcase(name, p) for p in include) or any(
            fnmatchcase(name, p) for p in exclude
        ), name
    assert "sync_assets" in packages
    assert all(p == "sync_assets" or p.startswith("sync_assets.") for p in packages), packages
    assert not [p for p in packages if "sandbox" in p]
    assert not (ROOT / "sync_assets" / "sandbox").exists()
    sandbox = tomllib.loads((ROOT / "sandbox" / "pyproject.toml").read_text())
    assert sandbox["project"]["name"] == "sync-assets-sandbox"
    assert (ROOT / "sandbox" / "src" / "sync_assets_sandbox" / "__main__.py").is_file()


def test_python_m_sync_assets_sandbox_serves_it(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync_assets_sandbox", "--port", "0", "--seed", "4"]
        + ["--athletes", "1", "--sizes", "3", "--list-order", "newest-first-always"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.match(r"Strava sandbox on (http://127\.0\.0\.1:\d+) ", first)
        assert match, first
        url = match.group(1)
        athletes = httpx.get(f"{url}/_sandbox/athletes", timeout=10).json()
        assert [a["activities"] for a in athletes] == [3]
        settings = httpx.get(f"{url}/_sandbox/settings", timeout=10).json()
        assert settings["list_order"] == "newest-first-always"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
