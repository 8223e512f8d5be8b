UPDATE strava_connections SET access_token_encrypted = :access, refresh_token_encrypted = :refresh
WHERE user_id = :user_id
