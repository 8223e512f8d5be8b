insert into {schema}sync_staging
  (user_id, span, page, cursor_after, cursor_before, cursor_order, cursor_page, records, run_id)
values
  (:user_id, :span, :page, :cursor_after, :cursor_before, :cursor_order,
   :cursor_page, :records, :run_id)
on conflict (user_id, span, page) do update
  set cursor_after = excluded.cursor_after, cursor_before = excluded.cursor_before,
      cursor_order = excluded.cursor_order, cursor_page = excluded.cursor_page,
      records = excluded.records, run_id = excluded.run_id, created_at = {now}
