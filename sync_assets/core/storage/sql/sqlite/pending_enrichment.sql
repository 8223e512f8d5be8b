-- See the PostgreSQL version. Timestamps are ISO-8601 UTC text, which sorts as time.
SELECT user_id, substr(start_date_utc, 1, 7) || '-01T00:00:00Z' AS month, count(*) AS activities
FROM runs
WHERE json_extract(enrichment_status, '$.weather_status') IN ('pending', 'failed', 'skipped')
  AND coalesce(json_extract(enrichment_status, '$.weather_retryable'), 1)
  AND coalesce(json_extract(enrichment_status, '$.weather_retry_after'), '') <= :now
GROUP BY 1, 2
ORDER BY 1, 2
