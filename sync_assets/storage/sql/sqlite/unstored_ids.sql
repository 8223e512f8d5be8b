-- Of the activity ids a listing returned for a user, those neither in runs nor tombstoned
-- (see sql/postgres/unstored_ids.sql).
SELECT l.value FROM json_each(:ids) AS l
WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.user_id = :user_id AND r.strava_id = l.value)
  AND NOT EXISTS (
    SELECT 1 FROM strava_deleted_activities d
    WHERE d.user_id = :user_id AND d.strava_id = l.value
  )
ORDER BY l.value
