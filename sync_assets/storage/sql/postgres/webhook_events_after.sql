select e.id, e.object_type, e.object_id, e.aspect_type, e.owner_id, e.event_time,
       e.updates::text as updates, c.user_id::text as user_id
from public.strava_webhook_events e
left join public.strava_connections c on c.athlete_id = e.owner_id
where e.id > %(after)s
order by e.id
limit %(limit)s
