"""`TokenStoreResource`: where the Strava connections of this deployment are kept."""

from functools import cache

from dagster import ConfigurableResource
from pydantic import Field

from sync_assets.resources.tokens import SqliteTokenStore, TokenStore


@cache
def _sqlite_store(path: str) -> SqliteTokenStore:
    return SqliteTokenStore(path)


class TokenStoreResource(ConfigurableResource):
    """The embedded default keeps connections in a SQLite file under the data folder."""

    sqlite_path: str = Field(description="path of the SQLite database holding connections")

    def store(self) -> TokenStore:
        return _sqlite_store(self.sqlite_path)
