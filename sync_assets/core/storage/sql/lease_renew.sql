-- The holder's heartbeat: nothing changes (0 rows) when the run no longer holds the user.
update {schema}sync_user_leases set renewed_at = {now}
where user_id = :user_id and run_id = :run_id
