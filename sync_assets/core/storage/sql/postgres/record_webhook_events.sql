-- A batch of push events in one statement (the receiver's group commit). One row back per
-- event, in the batch's order: its new id, or null if it was stored already or comes again
-- earlier in the batch (the dedup key of record_webhook_event). Ids follow the batch's order.
with batch as (
  select ord,
         (e ->> 'subscription_id')::bigint as subscription_id,
         e ->> 'object_type' as object_type,
         (e ->> 'object_id')::bigint as object_id,
         e ->> 'aspect_type' as aspect_type,
         (e ->> 'owner_id')::bigint as owner_id,
         (e ->> 'event_time')::bigint as event_time,
         coalesce((e ->> 'updates')::jsonb, '{}'::jsonb) as updates
  from jsonb_array_elements(%(events)s) with ordinality as t(e, ord)
), firsts as (
  select distinct on (object_type, object_id, aspect_type, owner_id, event_time) *
  from batch
  order by object_type, object_id, aspect_type, owner_id, event_time, ord
), inserted as (
  insert into public.strava_webhook_events (subscription_id, object_type, object_id, aspect_type,
                                            owner_id, event_time, updates)
  select subscription_id, object_type, object_id, aspect_type, owner_id, event_time, updates
  from firsts
  order by ord
  on conflict do nothing
  returning id, object_type, object_id, aspect_type, owner_id, event_time
)
select i.id
from batch b
left join firsts f on f.ord = b.ord
left join inserted i
  on f.ord is not null
 and (i.object_type, i.object_id, i.aspect_type, i.owner_id, i.event_time)
   = (b.object_type, b.object_id, b.aspect_type, b.owner_id, b.event_time)
order by b.ord
