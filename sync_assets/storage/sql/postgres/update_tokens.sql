update public.strava_connections
set access_token_encrypted = %(access)s,
    refresh_token_encrypted = %(refresh)s,
    expires_at = to_timestamp(%(expires_at)s)
where user_id = %(user_id)s
