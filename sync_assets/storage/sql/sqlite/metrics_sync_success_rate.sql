-- See the PostgreSQL version.
SELECT * FROM sync_success_rate ORDER BY day
