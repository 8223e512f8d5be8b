-- Pages of an unfinished listing, if recent enough to trust.
select page, cursor_after, cursor_before, cursor_order, cursor_page, records{::text} as records
from {schema}sync_staging
where user_id = :user_id and span = :span
  and created_at > {seconds_ago(:max_age_seconds)}
order by page
