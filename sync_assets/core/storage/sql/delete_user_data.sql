-- Strava's API agreement: a deauthorized athlete's Strava data is deleted. The connection row
-- stays (tokens blanked, status deauthorized) so the app can show why syncing stopped. The athlete's push events go first, in the same
-- transaction (delete_user_events.sql, one per dialect: their JSON operators differ).
delete from {schema}runs where user_id = :user_id;
delete from {schema}activity_quarantine where user_id = :user_id;
delete from {schema}sync_staging where user_id = :user_id;
-- A run still holding the user loses it: it stages no more pages.
delete from {schema}sync_user_leases where user_id = :user_id;
delete from {schema}strava_deleted_activities where user_id = :user_id;
-- The watermark vouches for rows that are gone now: an incremental sync must not trust it.
delete from {schema}strava_listing_watermarks where user_id = :user_id;
-- Sync sessions carry windows, cursors, counts and errors derived from the athlete's data.
delete from {schema}sync_sessions where user_id = :user_id;
update {schema}strava_connections
set status = 'deauthorized', status_reason = :reason, access_token_encrypted = :blank,
    refresh_token_encrypted = :blank
where user_id = :user_id;
