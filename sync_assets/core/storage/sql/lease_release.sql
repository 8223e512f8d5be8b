delete from {schema}sync_user_leases where user_id = :user_id and run_id = :run_id
