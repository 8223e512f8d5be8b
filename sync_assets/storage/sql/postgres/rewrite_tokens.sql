update public.strava_connections
set access_token_encrypted = %(access)s, refresh_token_encrypted = %(refresh)s
where user_id = %(user_id)s
