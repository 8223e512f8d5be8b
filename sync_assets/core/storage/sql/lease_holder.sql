-- Who holds :user_id, since when, and whether the hold has outlived its ttl.
select run_id, acquired_at, renewed_at,
       case when renewed_at < {seconds_ago(ttl_seconds)} then 1 else 0 end as expired
from {schema}sync_user_leases
where user_id = :user_id
