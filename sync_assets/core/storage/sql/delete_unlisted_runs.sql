-- A complete listing of a user's window is Strava's truth for that window: rows in it that the
-- listing did not return were deleted on Strava (or made invisible to this app). Only rows
-- stored before the listing started go: one a concurrent sync stored meanwhile is kept.
delete from {schema}runs
where user_id = :user_id
  and start_date_utc >= :window_start and start_date_utc < :window_end
  and created_at < :listed_at
  and strava_id not in ({ids(:listed)})
