select user_id{::text}, athlete_id, scopes, status, status_reason, access_token_encrypted,
       refresh_token_encrypted, {epoch(expires_at)} as expires_at
from {schema}strava_connections
where :status{::text} is null or status = :status{::text}
order by user_id
