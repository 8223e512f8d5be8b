insert into public.strava_webhook_events (subscription_id, object_type, object_id, aspect_type,
                                          owner_id, event_time, updates)
values (%(subscription_id)s, %(object_type)s, %(object_id)s, %(aspect_type)s, %(owner_id)s,
        %(event_time)s, %(updates)s)
on conflict do nothing
returning id
