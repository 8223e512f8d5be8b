SELECT page, cursor_after, cursor_before, cursor_order, cursor_page, records FROM sync_staging
WHERE user_id = :user_id AND span = :span
  AND created_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || :max_age_seconds || ' seconds')
ORDER BY page
