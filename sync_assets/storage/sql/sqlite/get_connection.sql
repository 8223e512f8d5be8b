SELECT user_id, athlete_id, scopes, status, status_reason, access_token_encrypted,
       refresh_token_encrypted, expires_at
FROM strava_connections WHERE user_id = :user_id
