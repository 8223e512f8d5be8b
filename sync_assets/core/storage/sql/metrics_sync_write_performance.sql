-- Every row of the view sync_write_performance (supabase/migrations/20261129001100_sync_metrics.sql).
select * from {schema}sync_write_performance order by day
