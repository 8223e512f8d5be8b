-- The span's staged pages become run :run_id's (it resumes from them).
update {schema}sync_staging set run_id = :run_id
where user_id = :user_id and span = :span
