-- See the PostgreSQL version.
SELECT user_id, created_at
FROM strava_connections
WHERE status = 'active' AND (created_at, user_id) > (:since, :after_user)
ORDER BY created_at, user_id
LIMIT :limit
