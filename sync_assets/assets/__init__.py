from sync_assets.assets.raw import raw_strava_activities

__all__ = ["raw_strava_activities"]
