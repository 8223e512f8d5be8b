INSERT INTO sync_staging
    (user_id, span, page, cursor_after, cursor_before, cursor_order, cursor_page, records)
VALUES
    (:user_id, :span, :page, :cursor_after, :cursor_before, :cursor_order, :cursor_page, :records)
ON CONFLICT (user_id, span, page) DO UPDATE SET
    cursor_after = excluded.cursor_after, cursor_before = excluded.cursor_before,
    cursor_order = excluded.cursor_order, cursor_page = excluded.cursor_page,
    records = excluded.records, created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
