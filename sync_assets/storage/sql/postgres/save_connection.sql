insert into public.strava_connections
  (user_id, athlete_id, scopes, access_token_encrypted, refresh_token_encrypted, expires_at,
   status, status_reason)
values
  (%(user_id)s, %(athlete_id)s, %(scopes)s, %(access)s, %(refresh)s,
   to_timestamp(%(expires_at)s), 'active', null)
on conflict (user_id) do update set
  athlete_id = coalesce(excluded.athlete_id, strava_connections.athlete_id),
  scopes = coalesce(excluded.scopes, strava_connections.scopes),
  access_token_encrypted = excluded.access_token_encrypted,
  refresh_token_encrypted = excluded.refresh_token_encrypted,
  expires_at = excluded.expires_at,
  status = 'active',
  status_reason = null
