"""Where PostgreSQL and SQLite differ, in one place: SQL rendering and value conversion.

Each store operation is written once (`sqlstore.SqlStore`) over SQL files written once
(`sql/*.sql`). Those files are plain SQL with named parameters (`:name`) and a few markers that
a `Dialect` renders:

    {schema}              `public.` on PostgreSQL, nothing on SQLite
    {::type}              a PostgreSQL cast (`user_id{::text}`, `:status{::text}`); SQLite's
                          dynamically typed columns need none
    {now}                 the database clock as its timestamp columns hold it
    {seconds_ago(:p)}     that clock :p seconds ago
    {epoch(col)}          a timestamp column as Unix seconds (SQLite keeps the integer)
    {from_epoch(:p)}      Unix seconds as the column's timestamp
    {ids(:p)}             a list parameter as a one-column relation `id` (`Dialect.ids`)
    {for_update}          lock the rows read (SQLite: the caller's `BEGIN IMMEDIATE` does)
    {for_share}           lock them against updates, not against other sharers (likewise)

Why not SQLAlchemy Core: the SQL would move into Python expressions (the project keeps SQL in
files), the COPY fast path needs psycopg underneath anyway, and a reviewer reads the SQL files
as they run. Why markers rather than a translator: the few differences stay visible in the SQL,
and anything a marker cannot say (JSON operators, month arithmetic, COPY, unnest of arrays)
is an honest per-dialect file in `sql/postgres/` or `sql/sqlite/`, written in that backend's
own syntax and used verbatim. A name exists either as a shared file or per dialect, not both.

Values go through the dialect too: psycopg adapts Python values itself, while SQLite keeps
timestamps as ISO-8601 UTC text (`when`: as given, to the second; `clock`: to the millisecond,
the form of its `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')` defaults, so comparisons with those
columns hold), JSON as text and lists as JSON arrays.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from typing import Any

# A string literal, a comment, or a run of anything else (where markers and parameters are).
_TOKENS = re.compile(r"('(?:[^']|'')*')|(--[^\n]*)|([^'-]+|-)")
_MARKER = re.compile(r"\{(::[\w\[\]]+|\w+)(?:\(([^(){}]*)\))?\}")
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@cache
def _raw(*parts: str) -> str | None:
    path = resources.files(__package__).joinpath("sql", *parts)
    return path.read_text() if path.is_file() else None


def _code(sql: str, change) -> str:
    """`sql` with `change` applied to what is neither a string literal nor a comment."""
    return "".join(
        change(m.group(3)) if m.group(3) is not None else m.group(0) for m in _TOKENS.finditer(sql)
    )


class Dialect:
    name: str
    templates: dict[str, str]  # marker -> SQL, `{0}` standing for its argument
    text_holds_nul = True  # PostgreSQL's text cannot hold NUL

    def __init__(self) -> None:
        self.render = cache(self._render)

    def sql(self, name: str, **holes: str) -> str:
        """The statement `name`: its own file in this dialect's folder, verbatim, else the
        shared one rendered (`holes`: text for markers the caller fills, as {assignments})."""
        own = _raw(self.name, f"{name}.sql")
        if own is not None:
            return own
        shared = _raw(f"{name}.sql")
        if shared is None:
            raise FileNotFoundError(f"no SQL statement {name!r} for {self.name}")
        for hole, text in holes.items():
            shared = shared.replace(f"{{{hole}}}", text)
        return self.render(shared)

    def _render(self, sql: str) -> str:
        def marker(m: re.Match[str]) -> str:
            key, arg = m.group(1), m.group(2)
            if key.startswith("::"):
                return self.cast(key)
            return self.templates[key].format(arg)

        return self.placeholders(_code(sql, lambda code: _MARKER.sub(marker, code)))

    def cast(self, cast: str) -> str:
        raise NotImplementedError

    def placeholders(self, sql: str) -> str:
        raise NotImplementedError

    # -- values written -------------------------------------------------------------------
    def json(self, value: Any) -> Any:
        raise NotImplementedError

    def ids(self, values: Sequence[int]) -> Any:
        raise NotImplementedError

    def when(self, value: Any) -> Any:
        """A timestamp of the data (a run's start, a session's window, a weather hour)."""
        return value

    def clock(self, value: Any) -> Any:
        """A timestamp compared with (or written like) the database's own clock columns."""
        return value

    def nul_free(self, text: str) -> str:
        return text

    # -- values read ----------------------------------------------------------------------
    def loads(self, value: Any) -> Any:
        """A JSON column as Python (None stays None)."""
        return value

    def timestamp(self, value: Any) -> datetime | None:
        return value


class PostgresDialect(Dialect):
    name = "postgres"
    templates = {
        "schema": "public.",
        "now": "now()",
        "seconds_ago": "now() - make_interval(secs => {0})",
        "epoch": "extract(epoch from {0})::bigint",
        "from_epoch": "to_timestamp({0})",
        "ids": "select unnest({0}::bigint[]) as id",
        "for_update": "for update",
        "for_share": "for share",
    }
    text_holds_nul = False

    def cast(self, cast: str) -> str:
        return cast

    def placeholders(self, sql: str) -> str:
        # psycopg's `%(name)s`; a literal % (in a string or comment too) is written %%.
        sql = sql.replace("%", "%%")
        return _code(sql, lambda code: _PARAM.sub(r"%(\1)s", code))

    def json(self, value: Any) -> Any:
        from psycopg.types.json import Jsonb

        return Jsonb(value)

    def ids(self, values: Sequence[int]) -> Any:
        return list(values)

    def nul_free(self, text: str) -> str:
        return text.replace("\x00", "\\u0000")


class SqliteDialect(Dialect):
    name = "sqlite"
    templates = {
        "schema": "",
        "now": "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        "seconds_ago": "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || {0} || ' seconds')",
        "epoch": "{0}",
        "from_epoch": "{0}",
        "ids": "select value as id from json_each({0})",
        "for_update": "",
        "for_share": "",
    }

    def cast(self, cast: str) -> str:
        return ""

    def placeholders(self, sql: str) -> str:
        def check(code: str) -> str:
            if "::" in code:
                raise ValueError(f"a PostgreSQL cast outside {{::type}} in: {code.strip()}")
            return code

        return _code(sql, check)  # SQLite reads :name itself

    def json(self, value: Any) -> Any:
        return json.dumps(value)

    def ids(self, values: Sequence[int]) -> Any:
        return json.dumps(list(values))

    def when(self, value: Any) -> Any:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return value.strftime("%Y-%m-%dT%H:%M:%S")
            return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return value

    def clock(self, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return self.when(value)

    def loads(self, value: Any) -> Any:
        return json.loads(value) if value is not None else None

    def timestamp(self, value: Any) -> datetime | None:
        return parse_time(value)


def parse_time(value: Any) -> datetime | None:
    """A timestamp read back (a datetime, or SQLite's ISO-8601 text); naive ones are UTC."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def utc(value: Any) -> datetime | None:
    """A timestamp read back, in UTC."""
    value = parse_time(value)
    return value.astimezone(UTC) if value is not None else None


def day(value: Any) -> Any:
    """A date read back: SQLite's 'YYYY-MM-DD' text, PostgreSQL's date."""
    return date.fromisoformat(value) if isinstance(value, str) else value


POSTGRES = PostgresDialect()
SQLITE = SqliteDialect()
