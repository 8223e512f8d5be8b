-- See the PostgreSQL version.
DELETE FROM runs
WHERE user_id = :user_id
  AND start_date_utc >= :window_start AND start_date_utc < :window_end
  AND created_at < :listed_at
  AND strava_id NOT IN (SELECT value FROM json_each(:listed))
