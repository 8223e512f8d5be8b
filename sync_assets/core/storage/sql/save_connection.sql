insert into {schema}strava_connections
  (user_id, athlete_id, scopes, access_token_encrypted, refresh_token_encrypted, expires_at,
   status, status_reason)
values
  (:user_id, :athlete_id, :scopes, :access, :refresh,
   {from_epoch(:expires_at)}, 'active', null)
on conflict (user_id) do update set
  athlete_id = coalesce(excluded.athlete_id, strava_connections.athlete_id),
  scopes = coalesce(excluded.scopes, strava_connections.scopes),
  access_token_encrypted = excluded.access_token_encrypted,
  refresh_token_encrypted = excluded.refresh_token_encrypted,
  expires_at = excluded.expires_at,
  status = 'active',
  status_reason = null
