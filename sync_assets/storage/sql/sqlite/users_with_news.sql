-- See the PostgreSQL version (ISO-8601 UTC text compares as time).
SELECT DISTINCT c.user_id
FROM strava_webhook_events e
JOIN strava_connections c ON c.athlete_id = e.owner_id AND c.status = 'active'
WHERE e.received_at > coalesce(
  (SELECT max(s.completed_at) FROM sync_sessions s
   WHERE s.user_id = c.user_id AND s.status = 'completed'),
  '')
