update {schema}strava_connections
set access_token_encrypted = :access, refresh_token_encrypted = :refresh
where user_id = :user_id
