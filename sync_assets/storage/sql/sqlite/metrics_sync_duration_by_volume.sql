-- See the PostgreSQL version.
SELECT * FROM sync_duration_by_volume ORDER BY volume_min
