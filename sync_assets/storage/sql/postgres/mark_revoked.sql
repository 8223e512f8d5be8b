update public.strava_connections
set status = 'revoked', status_reason = %(reason)s
where user_id = %(user_id)s
