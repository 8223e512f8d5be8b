select start_date_utc from {schema}runs where user_id = :user_id and strava_id = :strava_id
