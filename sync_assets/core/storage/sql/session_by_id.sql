-- One sync session by its id (the seed's syncId): what `sync-assets status --sync-id` shows.
select id{::text}, user_id{::text}, dagster_run_id, sync_type, status, current_phase,
       time_range_start, time_range_end, total_activities_estimated, activities_fetched,
       activities_enriched, activities_stored, activities_updated, activities_skipped,
       activities_failed, error_count, progress, last_error, retry_count, last_successful_page,
       checkpoint_data, started_at, completed_at, last_activity_at
from {schema}sync_sessions
where id = :id{::uuid}
