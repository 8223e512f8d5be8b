SELECT e.id, e.object_type, e.object_id, e.aspect_type, e.owner_id, e.event_time, e.updates,
       c.user_id
FROM strava_webhook_events e
LEFT JOIN strava_connections c ON c.athlete_id = e.owner_id
WHERE e.id > :after
ORDER BY e.id
LIMIT :limit
