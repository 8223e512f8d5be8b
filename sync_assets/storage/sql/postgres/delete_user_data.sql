-- Strava's API agreement: a deauthorized athlete's Strava data is deleted. The connection row
-- stays (tokens blanked, status deauthorized) so the app can show why syncing stopped.
delete from public.runs where user_id = %(user_id)s;
delete from public.activity_quarantine where user_id = %(user_id)s;
delete from public.sync_staging where user_id = %(user_id)s;
delete from public.strava_deleted_activities where user_id = %(user_id)s;
-- Sync sessions carry windows, cursors, counts and errors derived from the athlete's data.
delete from public.sync_sessions where user_id = %(user_id)s;
-- Push events name the athlete's activities and carry their changes (titles...). The
-- deauthorization event itself stays: it holds no activity data, and a sensor tick that
-- fails after this transaction (deleting the Parquet files) finds it again and finishes.
delete from public.strava_webhook_events e
using public.strava_connections c
where c.user_id = %(user_id)s and e.owner_id = c.athlete_id
  and not (e.object_type = 'athlete'
           and coalesce(lower(e.updates ->> 'authorized'), '') = 'false');
update public.strava_connections
set status = 'deauthorized', status_reason = %(reason)s, access_token_encrypted = %(blank)s,
    refresh_token_encrypted = %(blank)s
where user_id = %(user_id)s;
