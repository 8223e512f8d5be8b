-- See the PostgreSQL version.
DELETE FROM runs WHERE user_id = :user_id;
DELETE FROM activity_quarantine WHERE user_id = :user_id;
DELETE FROM sync_staging WHERE user_id = :user_id;
UPDATE strava_connections
SET status = 'deauthorized', status_reason = :reason, access_token_encrypted = :blank,
    refresh_token_encrypted = :blank
WHERE user_id = :user_id;
