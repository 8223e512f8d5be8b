from sync_assets.assets.enriched import weather_enriched_activities
from sync_assets.assets.raw import raw_strava_activities
from sync_assets.assets.runs import runs_table

__all__ = ["raw_strava_activities", "runs_table", "weather_enriched_activities"]
