-- See the PostgreSQL version.
DELETE FROM runs WHERE user_id = :user_id;
DELETE FROM activity_quarantine WHERE user_id = :user_id;
DELETE FROM sync_staging WHERE user_id = :user_id;
DELETE FROM strava_deleted_activities WHERE user_id = :user_id;
DELETE FROM sync_sessions WHERE user_id = :user_id;
DELETE FROM strava_webhook_events
WHERE owner_id = (SELECT athlete_id FROM strava_connections WHERE user_id = :user_id)
  AND NOT (object_type = 'athlete'
           AND (coalesce(json_type(updates, '$.authorized'), '') = 'false'
                OR coalesce(lower(json_extract(updates, '$.authorized')), '') = 'false'));
UPDATE strava_connections
SET status = 'deauthorized', status_reason = :reason, access_token_encrypted = :blank,
    refresh_token_encrypted = :blank
WHERE user_id = :user_id;
