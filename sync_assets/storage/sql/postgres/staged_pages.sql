-- Pages of an unfinished listing, if recent enough to trust.
select page, cursor_after, cursor_before, cursor_order, cursor_page, records::text as records
from public.sync_staging
where user_id = %(user_id)s and span = %(span)s
  and created_at > now() - make_interval(secs => %(max_age_seconds)s)
order by page
