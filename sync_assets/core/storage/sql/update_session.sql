-- Set some of a session's columns: `"column" = :column` for each, of `base.SESSION_FIELDS`
-- only, filled in by the caller. A run over several users keeps one session per user: this
-- user's only.
update {schema}sync_sessions set {assignments}
where dagster_run_id = :_run_id and user_id = :_user_id
