-- Hold :user_id for run :run_id if the row is free, already the run's, held by :ended_run (a
-- run the caller knows has ended), or not renewed within its ttl (its holder died). One row
-- comes back when the run holds the user.
insert into {schema}sync_user_leases (user_id, run_id, ttl_seconds, acquired_at, renewed_at)
values (:user_id, :run_id, :ttl_seconds, {now}, {now})
on conflict (user_id) do update
  set run_id = excluded.run_id,
      ttl_seconds = excluded.ttl_seconds,
      renewed_at = excluded.renewed_at,
      acquired_at = case when sync_user_leases.run_id = excluded.run_id
                         then sync_user_leases.acquired_at
                         else excluded.acquired_at end
  where sync_user_leases.run_id = excluded.run_id
     or sync_user_leases.run_id = :ended_run{::text}
     or sync_user_leases.renewed_at < {seconds_ago(sync_user_leases.ttl_seconds)}
returning run_id
