INSERT INTO strava_connections
    (user_id, athlete_id, scopes, access_token_encrypted, refresh_token_encrypted, expires_at,
     status, status_reason)
VALUES (:user_id, :athlete_id, :scopes, :access, :refresh, :expires_at, 'active', NULL)
ON CONFLICT (user_id) DO UPDATE SET
    athlete_id = COALESCE(excluded.athlete_id, strava_connections.athlete_id),
    scopes = COALESCE(excluded.scopes, strava_connections.scopes),
    access_token_encrypted = excluded.access_token_encrypted,
    refresh_token_encrypted = excluded.refresh_token_encrypted,
    expires_at = excluded.expires_at,
    status = 'active', status_reason = NULL
