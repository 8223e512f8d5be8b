"""The SQL files written once render for both backends (`sync_assets.core.storage.dialect`)."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from sync_assets.core.storage.dialect import POSTGRES, SQLITE

SQL = resources.files("sync_assets.core.storage") / "sql"


def _names(*parts: str) -> set[str]:
    folder = SQL.joinpath(*parts)
    return {p.name.removesuffix(".sql") for p in folder.iterdir() if p.name.endswith(".sql")}


def test_a_statement_is_shared_or_per_dialect_never_both() -> None:
    shared = _names()
    for dialect in ("postgres", "sqlite"):
        assert not shared & _names(dialect), dialect


@pytest.mark.parametrize("dialect", [POSTGRES, SQLITE], ids=lambda d: d.name)
def test_every_shared_statement_renders(dialect) -> None:
    for name in sorted(_names()):
        sql = dialect.sql(name, assignments='"status" = :status')
        assert not re.search(r"\{[:\w]", sql), name  # no marker left
        if dialect is POSTGRES:
            code = re.sub(r"--[^\n]*", "", sql)  # comments may name parameters
            assert ":user_id" not in code.replace("::", ""), name
        else:
            assert "public." not in sql and "%(" not in sql, name


def test_markers_and_parameters() -> None:
    text = (
        "select id{::text} from {schema}runs -- :not_a_param, 100%\n"
        "where a = :a and b in ({ids(:b)}) and c = '%:c' and t > {seconds_ago(:age)}"
    )
    assert POSTGRES.render(text) == (
        "select id::text from public.runs -- :not_a_param, 100%%\n"
        "where a = %(a)s and b in (select unnest(%(b)s::bigint[]) as id) and c = '%%:c'"
        " and t > now() - make_interval(secs => %(age)s)"
    )
    assert SQLITE.render(text) == (
        "select id from runs -- :not_a_param, 100%\n"
        "where a = :a and b in (select value as id from json_each(:b)) and c = '%:c'"
        " and t > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || :age || ' seconds')"
    )
    with pytest.raises(ValueError, match="PostgreSQL cast"):
        SQLITE.render("select id::text from runs")
