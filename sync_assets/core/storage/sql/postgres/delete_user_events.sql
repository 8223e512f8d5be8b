-- Push events name the athlete's activities and carry their changes (titles...). The
-- deauthorization event itself stays: it holds no activity data, and a sensor tick that
-- fails after this transaction (deleting the Parquet files) finds it again and finishes.
delete from public.strava_webhook_events e
using public.strava_connections c
where c.user_id = %(user_id)s and e.owner_id = c.athlete_id
  and not (e.object_type = 'athlete'
           and coalesce(lower(e.updates ->> 'authorized'), '') = 'false')
