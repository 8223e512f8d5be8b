-- Every row of the view sync_duration_by_volume (supabase/migrations/20261129001100_sync_metrics.sql).
select * from {schema}sync_duration_by_volume order by volume_min
