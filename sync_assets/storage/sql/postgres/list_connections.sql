select user_id::text, athlete_id, scopes, status, status_reason, access_token_encrypted,
       refresh_token_encrypted, extract(epoch from expires_at)::bigint as expires_at
from public.strava_connections
where %(status)s::text is null or status = %(status)s::text
order by user_id
