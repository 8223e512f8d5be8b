update {schema}strava_connections
set access_token_encrypted = :access,
    refresh_token_encrypted = :refresh,
    expires_at = {from_epoch(:expires_at)}
where user_id = :user_id
