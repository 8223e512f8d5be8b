INSERT INTO sync_staging (user_id, span, page, cursor_after, records)
VALUES (:user_id, :span, :page, :cursor, :records)
ON CONFLICT (user_id, span, page) DO UPDATE SET
    cursor_after = excluded.cursor_after, records = excluded.records,
    created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
