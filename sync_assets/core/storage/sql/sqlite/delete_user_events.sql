-- See the PostgreSQL version.
DELETE FROM strava_webhook_events
WHERE owner_id = (SELECT athlete_id FROM strava_connections WHERE user_id = :user_id)
  AND NOT (object_type = 'athlete'
           AND (coalesce(json_type(updates, '$.authorized'), '') = 'false'
                OR coalesce(lower(json_extract(updates, '$.authorized')), '') = 'false'))
