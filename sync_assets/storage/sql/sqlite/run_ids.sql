SELECT strava_id FROM runs WHERE user_id = :user_id ORDER BY start_date_utc, strava_id
