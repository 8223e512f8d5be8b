DELETE FROM sync_staging WHERE user_id = :user_id AND span = :span
