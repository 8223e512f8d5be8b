-- See the PostgreSQL version: the row goes, a tombstone stays.
INSERT INTO strava_deleted_activities (user_id, strava_id) VALUES (:user_id, :strava_id)
ON CONFLICT DO NOTHING;
DELETE FROM runs WHERE user_id = :user_id AND strava_id = :strava_id
