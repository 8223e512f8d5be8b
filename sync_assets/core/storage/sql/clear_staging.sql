delete from {schema}sync_staging where user_id = :user_id and span = :span
