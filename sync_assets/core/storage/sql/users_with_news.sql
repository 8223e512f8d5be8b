-- Users with a push event received after their last completed sync: with webhooks on, the
-- only ones an incremental sync can find anything new for. (SQLite's ISO-8601 UTC text compares
-- as time.)
select distinct c.user_id{::text}
from {schema}strava_webhook_events e
join {schema}strava_connections c on c.athlete_id = e.owner_id and c.status = 'active'
where not exists (
  select 1 from {schema}sync_sessions s
  where s.user_id = c.user_id and s.status = 'completed' and s.completed_at >= e.received_at
)
