-- Every row of the view sync_success_rate (supabase/migrations/20261129001100_sync_metrics.sql).
select * from {schema}sync_success_rate order by day
