from sync_assets.resources.parquet_io import ParquetIOManager, PartitionData
from sync_assets.resources.strava import StravaResource
from sync_assets.resources.token_store import TokenStoreResource

__all__ = ["ParquetIOManager", "PartitionData", "StravaResource", "TokenStoreResource"]
