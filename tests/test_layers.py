"""The layers hold: the core imports no Dagster and nothing above it, the code location does not
import the applications (import-linter's contracts in pyproject.toml), and private Dagster names
are imported in one audited module."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS = (
    "The core imports no Dagster",
    "The core imports neither the code location nor the applications",
    "The code location does not import the applications",
)


def test_the_import_contracts_are_kept() -> None:
    out = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for name in CONTRACTS:
        assert f"{name} KEPT" in out.stdout, out.stdout
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in out.stdout


def test_private_dagster_names_come_from_one_module() -> None:
    private = re.compile(r"^\s*(from|import) dagster\._", re.M)
    users = sorted(
        str(p.relative_to(REPO))
        for p in (REPO / "sync_assets").rglob("*.py")
        if private.search(p.read_text())
    )
    assert users == ["sync_assets/dagster_private.py"], users


def test_the_core_runs_without_dagster() -> None:
    """Not only the static graph: the core imports in a process where Dagster cannot be."""
    code = (
        "import sys; sys.modules['dagster'] = None\n"
        "import importlib, pkgutil, sync_assets.core as core\n"
        "names = [m.name for m in pkgutil.walk_packages(core.__path__, 'sync_assets.core.')]\n"
        "[importlib.import_module(n) for n in names]\n"
        "print(len(names))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) > 30
