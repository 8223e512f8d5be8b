SELECT start_date_utc FROM runs WHERE user_id = :user_id AND strava_id = :strava_id
