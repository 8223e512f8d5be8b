UPDATE strava_connections SET status = 'revoked', status_reason = :reason WHERE user_id = :user_id
