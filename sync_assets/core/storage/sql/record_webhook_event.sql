insert into {schema}strava_webhook_events (subscription_id, object_type, object_id, aspect_type,
                                          owner_id, event_time, updates)
values (:subscription_id, :object_type, :object_id, :aspect_type, :owner_id,
        :event_time, :updates)
on conflict do nothing
returning id
