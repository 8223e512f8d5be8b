-- See the PostgreSQL version.
SELECT * FROM sync_api_health ORDER BY day, api
