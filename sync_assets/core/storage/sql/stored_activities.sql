-- A user's stored activities of a window, as Strava sent them: what an incremental listing,
-- which lists the window's newest part only, merges with (sync_assets/core/incremental.py).
select strava_id, strava_data{::text} as payload
from {schema}runs
where user_id = :user_id and start_date_utc >= :window_start and start_date_utc < :window_end
order by start_date_utc, strava_id
