-- Whether run :run_id holds :user_id, keeping the row locked (PostgreSQL; SQLite: the write's
-- BEGIN IMMEDIATE) until the caller's transaction ends: nobody takes it over meanwhile.
select run_id from {schema}sync_user_leases
where user_id = :user_id and run_id = :run_id
{for_update}
