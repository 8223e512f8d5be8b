select e.id, e.object_type, e.object_id, e.aspect_type, e.owner_id, e.event_time,
       e.updates{::text} as updates, c.user_id{::text} as user_id
from {schema}strava_webhook_events e
left join {schema}strava_connections c on c.athlete_id = e.owner_id
where e.id > :after
order by e.id
limit :limit
