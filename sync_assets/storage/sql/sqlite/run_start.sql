SELECT start_date FROM runs WHERE user_id = :user_id AND strava_id = :strava_id
