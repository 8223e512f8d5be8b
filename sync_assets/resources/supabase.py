"""`SupabaseResource`: the pipeline's database, Supabase/PostgreSQL or the embedded SQLite."""

from typing import TYPE_CHECKING

from dagster import ConfigurableResource
from pydantic import Field

if TYPE_CHECKING:  # storage imports resources.tokens: import it lazily to avoid a cycle
    from sync_assets.storage import Store


class SupabaseResource(ConfigurableResource):
    """`database_url` is Supabase's direct connection string, or its pooler's (transaction
    mode, port 6543: server-side prepared statements are then turned off). Without it, the
    embedded default: a SQLite database in `data_dir` with the same tables and behaviour.
    Set it with `EnvVar("DATABASE_URL")`: the URL holds a password and is never logged.
    """

    database_url: str | None = Field(default=None, description="DATABASE_URL")
    data_dir: str = Field(description="folder of the embedded default (SYNC_ASSETS_HOME)")

    def store(self) -> "Store":
        from sync_assets.storage import open_store

        return open_store(self.database_url, self.data_dir)
