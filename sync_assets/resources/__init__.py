from sync_assets.resources.parquet_io import ParquetIOManager, PartitionData
from sync_assets.resources.strava import StravaResource
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.resources.weather import WeatherResource

__all__ = [
    "ParquetIOManager",
    "PartitionData",
    "StravaResource",
    "SupabaseResource",
    "WeatherResource",
]
