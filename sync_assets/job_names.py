"""Job names, shared by the definitions and the sensors and schedules that launch them."""

STRAVA_SYNC_JOB = "strava_sync"
WEATHER_ENRICHMENT_JOB = "weather_enrichment"
