-- Idempotent per Dagster run: a retried step finds the session its first attempt created.
-- last_activity_at: SQLite's column has no default (see 0011_seed_contract.sql).
insert into {schema}sync_sessions (id, user_id, dagster_run_id, sync_type, time_range_start,
                                  time_range_end, last_activity_at)
values (:id, :user_id, :run_id, :sync_type, :time_range_start, :time_range_end, {now})
on conflict (dagster_run_id, user_id) do nothing
