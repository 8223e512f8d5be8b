-- See supabase/migrations/20261202000900_weather_retry_skipped.sql.
DROP INDEX IF EXISTS runs_weather_retry_idx;
CREATE INDEX runs_weather_retry_idx ON runs (user_id, start_date_utc)
    WHERE json_extract(enrichment_status, '$.weather_status') IN ('pending', 'failed', 'skipped');
