-- Pages of an unfinished listing, if recent enough to trust: from the page after
-- :after_page, at most :limit of them (a resume reads them a few at a time).
select page, cursor_after, cursor_before, cursor_order, cursor_page, records{::text} as records
from {schema}sync_staging
where user_id = :user_id and span = :span and page > :after_page
  and created_at > {seconds_ago(:max_age_seconds)}
order by page
limit :limit
