"""What the tests share besides fixtures (those stay in `tests/conftest.py`), one module per
subject: `databases`, `users`, `strava`, `resources`, `runs`, `cli`, `daemon`, `polling`, `ui`.

Everything but `ui` is re-exported here (`from .helpers import ...`); the browser helpers are
imported from `tests.helpers.ui` by the browser tests alone, so that the other tests do not load
Playwright."""

from .cli import CHILD_ENV_DROPPED, CLI, cli_connect, sandbox_env
from .databases import BOOTSTRAP, add_users, migrate_postgres_until, migrate_sqlite_until
from .resources import make_resources
from .runs import (
    RUN_PREFIX,
    loading_lines,
    partition_metadata,
    run_metadata,
    stored_partition_metadata,
    sync_range,
)
from .strava import LIST_ORDERS, quarter_not_midnight, whole_history
from .users import connect_user, save_tokens

__all__ = [
    "BOOTSTRAP",
    "CHILD_ENV_DROPPED",
    "CLI",
    "LIST_ORDERS",
    "RUN_PREFIX",
    "add_users",
    "cli_connect",
    "connect_user",
    "loading_lines",
    "make_resources",
    "migrate_postgres_until",
    "migrate_sqlite_until",
    "partition_metadata",
    "quarter_not_midnight",
    "run_metadata",
    "sandbox_env",
    "save_tokens",
    "stored_partition_metadata",
    "sync_range",
    "whole_history",
]
