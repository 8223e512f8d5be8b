-- See the PostgreSQL version.
SELECT * FROM sync_write_performance ORDER BY day
