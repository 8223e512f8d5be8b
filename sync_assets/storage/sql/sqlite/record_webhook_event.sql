INSERT INTO strava_webhook_events (subscription_id, object_type, object_id, aspect_type,
                                   owner_id, event_time, updates)
VALUES (:subscription_id, :object_type, :object_id, :aspect_type, :owner_id, :event_time,
        :updates)
ON CONFLICT DO NOTHING
RETURNING id
