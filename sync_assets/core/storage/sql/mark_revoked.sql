update {schema}strava_connections
set status = 'revoked', status_reason = :reason
where user_id = :user_id
