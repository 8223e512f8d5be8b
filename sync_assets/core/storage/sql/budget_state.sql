select window_15, window_day, limit_15, limit_day, read_limit_15, read_limit_day, usage_15,
       usage_day, read_usage_15, read_usage_day, exhausted_until,
       clock_offset
from {schema}strava_rate_budget where app = :app
