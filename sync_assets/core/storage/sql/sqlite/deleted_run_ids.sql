SELECT strava_id FROM strava_deleted_activities
WHERE user_id = ? AND strava_id IN (SELECT value FROM json_each(?))
