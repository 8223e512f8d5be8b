INSERT OR IGNORE INTO activity_quarantine (user_id, strava_id, reason, payload, source, session_id)
VALUES (:user_id, :strava_id, :reason, :payload, :source, :session_id)
