select strava_id from {schema}runs where user_id = :user_id order by start_date_utc, strava_id
