"""Named SQL statements, kept as files next to this module (one dialect per folder)."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def statement(dialect: str, name: str) -> str:
    return (resources.files(__package__) / "sql" / dialect / f"{name}.sql").read_text()
