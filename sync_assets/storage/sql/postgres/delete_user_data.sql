-- Strava's API agreement: a deauthorized athlete's Strava data is deleted. The connection row
-- stays (tokens blanked, status deauthorized) so the app can show why syncing stopped.
delete from public.runs where user_id = %(user_id)s;
delete from public.activity_quarantine where user_id = %(user_id)s;
delete from public.sync_staging where user_id = %(user_id)s;
update public.strava_connections
set status = 'deauthorized', status_reason = %(reason)s, access_token_encrypted = %(blank)s,
    refresh_token_encrypted = %(blank)s
where user_id = %(user_id)s;
