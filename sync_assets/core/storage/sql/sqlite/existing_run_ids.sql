SELECT strava_id FROM runs WHERE user_id = ? AND strava_id IN (SELECT value FROM json_each(?))
