"""Plain PostgreSQL as a first-class target, as a new user meets it with the README.

`sync-assets db init --plain-postgres` makes a bare database ready for the Supabase migrations;
`connect` says in one line what is missing (and writes nothing, spends no code); a database
that is down or missing is one line within 10 s, never a pool time-out or a traceback; and the
migrations keep the Supabase CLI's layout, each applying on its own in order.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet

from sync_assets.apps import cli
from sync_assets.core.migrations import plain_postgres_compat_sql, postgres_migrations
from sync_assets.core.storage import close_stores, open_store

from .helpers import CLI
from .pg import temporary_database

MIGRATIONS = Path(__file__).parents[1] / "supabase" / "migrations"


@pytest.fixture
def bare_url(pg_roles) -> Iterator[str]:
    """A database as `createdb` leaves it: no auth schema, no migration."""
    with temporary_database("sa_plain") as url:
        yield url


@pytest.fixture
def cli_env(bare_url, sandbox, server, tmp_path, monkeypatch) -> Iterator[str]:
    home = tmp_path / "home"
    for name, value in {
        "SYNC_ASSETS_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "DATABASE_URL": bare_url,
        "SYNC_ASSETS_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "STRAVA_CLIENT_ID": sandbox.client_id,
        "STRAVA_CLIENT_SECRET": sandbox.client_secret,
        "STRAVA_API_URL": server.api_url,
        "STRAVA_OAUTH_URL": server.oauth_url,
    }.items():
        monkeypatch.setenv(name, value)
    yield bare_url
    close_stores()


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def table_exists(url: str, name: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()[0]


def test_a_new_user_goes_from_a_bare_database_to_a_connected_athlete(
    cli_env, sandbox, capsys, tmp_path
) -> None:
    url = cli_env
    athlete = sandbox.add_athlete(n_activities=5)
    user = str(uuid.uuid4())
    connect = ["connect", "--user", user, "--code", athlete.authorization_code]
    connect += ["--scope", "read,activity:read_all"]

    # Before `db init`: one line with the fix, nothing written, the code not spent.
    assert cli.main(connect) == 2
    line = one_line(capsys.readouterr().err)
    assert "no Supabase auth schema" in line and "sync-assets db init --plain-postgres" in line
    assert "127.0.0.1:5432/" in line
    assert not table_exists(url, "public.strava_connections")

    assert cli.main(["db", "init", "--plain-postgres"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"applied \d+ migrations to 127\.0\.0\.1:5432/sa_plain_", out)
    assert cli.main(["db", "init", "--plain-postgres"]) == 0  # idempotent
    assert "up to date: no migration to apply" in capsys.readouterr().out

    # The user is not in auth.users: one line naming both ways in, nothing written.
    assert cli.main(connect) == 2
    line = one_line(capsys.readouterr().err)
    assert f"user {user} is not in auth.users" in line and "--create-auth-user" in line
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from public.strava_connections").fetchone()[0] == 0

    # The same authorization code still works: nothing before it was spent.
    assert cli.main([*connect, "--create-auth-user"]) == 0
    assert f"to Strava athlete {athlete.athlete_id}" in capsys.readouterr().out
    store = open_store(url, tmp_path / "home")
    conn_row = store.get(user)
    assert conn_row.athlete_id == athlete.athlete_id and conn_row.scopes == "activity:read_all,read"
    with psycopg.connect(url) as conn:
        assert (
            conn.execute("select count(*) from auth.users where id = %s", (user,)).fetchone()[0]
            == 1
        )


def test_on_supabase_users_sign_up_first_and_plain_postgres_init_is_refused(
    cli_env, sandbox, capsys
) -> None:
    url = cli_env
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(plain_postgres_compat_sql())
        conn.execute("create table auth.identities (id uuid primary key)")  # Supabase Auth's
    assert cli.main(["db", "init", "--plain-postgres"]) == 2
    assert "is a Supabase database" in one_line(capsys.readouterr().err)
    assert cli.main(["db", "init"]) == 0
    capsys.readouterr()
    athlete = sandbox.add_athlete(n_activities=1)
    user = str(uuid.uuid4())
    args = ["connect", "--user", user, "--code", athlete.authorization_code, "--create-auth-user"]
    assert cli.main(args) == 2
    line = one_line(capsys.readouterr().err)
    assert "on Supabase the user signs up in the app (Supabase Auth)" in line
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from auth.users").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("postgresql://postgres:s3cret-pw@127.0.0.1:1/nowhere", "127.0.0.1:1/nowhere"),
        (
            "postgresql://postgres:s3cret-pw@127.0.0.1:5432/sa_no_such_database",
            "127.0.0.1:5432/sa_no_such_database",
        ),
        # A host that does not answer at all (nothing routes there on these machines).
        ("postgresql://postgres:s3cret-pw@10.255.255.1:5432/far", "10.255.255.1:5432/far"),
    ],
    ids=["refused", "no-such-database", "no-answer"],
)
def test_a_database_that_cannot_be_reached_is_one_line_within_10_seconds(
    url, where, tmp_path
) -> None:
    env = {
        "PATH": str(Path(CLI).parent) + ":/usr/bin:/bin",
        "SYNC_ASSETS_HOME": str(tmp_path),
        "DATABASE_URL": url,
        "SYNC_ASSETS_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    for command in (["status"], ["db", "init"]):
        started = time.monotonic()
        out = subprocess.run([CLI, *command], env=env, capture_output=True, text=True, timeout=60)
        seconds = time.monotonic() - started
        assert out.returncode != 0
        line = one_line(out.stderr)
        assert f"cannot reach PostgreSQL at {where}" in line, line
        assert "s3cret-pw" not in out.stdout + out.stderr
        assert seconds < 10, f"{command}: {seconds:.1f} s"


def test_migrations_keep_the_supabase_cli_layout_and_each_applies_on_its_own(
    bare_url,
) -> None:
    """`supabase db push` reads `<14-digit version>_<name>.sql` files, applies each in its own
    transaction in version order and records it in supabase_migrations.schema_migrations:
    done that way here, our own runner then finds nothing left to apply."""
    files = sorted(MIGRATIONS.glob("*.sql"))
    assert files and [f.name for f in files] == [name for name, _ in postgres_migrations()]
    versions = []
    for f in files:
        assert re.fullmatch(r"\d{14}_[a-z0-9_]+\.sql", f.name), f.name
        versions.append(f.name[:14])
    assert versions == sorted(set(versions))  # unique, increasing
    assert [p.name for p in MIGRATIONS.iterdir() if p.suffix != ".sql"] == []
    with psycopg.connect(bare_url, autocommit=True) as conn:
        conn.execute(plain_postgres_compat_sql())
        conn.execute(
            "create schema supabase_migrations; create table supabase_migrations."
            "schema_migrations (version text primary key, statements text[], name text)"
        )
        for f in files:
            version, _, name = f.stem.partition("_")
            with conn.transaction():
                conn.execute(f.read_text())
                conn.execute(
                    "insert into supabase_migrations.schema_migrations values (%s, %s, %s)",
                    (version, [f.read_text()], name),
                )
    with psycopg.connect(bare_url) as conn:
        from sync_assets.core.migrations import migrate_postgres

        assert migrate_postgres(conn) == []
