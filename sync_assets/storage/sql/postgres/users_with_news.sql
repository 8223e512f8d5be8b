-- Users with a push event received after their last completed sync: with webhooks on, the
-- only ones an incremental sync can find anything new for.
select distinct c.user_id::text
from public.strava_webhook_events e
join public.strava_connections c on c.athlete_id = e.owner_id and c.status = 'active'
where e.received_at > coalesce(
  (select max(s.completed_at) from public.sync_sessions s
   where s.user_id = c.user_id and s.status = 'completed'),
  '-infinity')
