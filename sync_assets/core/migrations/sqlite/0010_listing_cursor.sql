-- Staged pages keep the whole listing cursor (see supabase/migrations/*_listing_cursor.sql).
DELETE FROM sync_staging;
ALTER TABLE sync_staging ADD COLUMN cursor_before INTEGER;
ALTER TABLE sync_staging ADD COLUMN cursor_order TEXT
    CHECK (cursor_order IN ('ascending', 'descending'));
ALTER TABLE sync_staging ADD COLUMN cursor_page INTEGER NOT NULL DEFAULT 1;
