-- Idempotent per Dagster run: a retried step finds the session its first attempt created.
insert into public.sync_sessions (user_id, dagster_run_id, sync_type, time_range_start,
                                  time_range_end)
values (%(user_id)s, %(run_id)s, %(sync_type)s, %(time_range_start)s, %(time_range_end)s)
on conflict (dagster_run_id, user_id) do nothing
