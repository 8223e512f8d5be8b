-- A complete listing was stored: the watermark moves to its start, never back (a slower
-- concurrent sync that listed earlier leaves the newer watermark as it is).
insert into {schema}strava_listing_watermarks as w (user_id, listed_from, listed_through)
values (:user_id, :listed_from, :listed_through)
on conflict (user_id) do update
  set listed_from = excluded.listed_from, listed_through = excluded.listed_through,
      updated_at = {now}
  where w.listed_through < excluded.listed_through
