-- Every row of the view sync_api_health (supabase/migrations/20261129001100_sync_metrics.sql).
select * from {schema}sync_api_health order by day, api
