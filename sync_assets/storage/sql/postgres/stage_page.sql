insert into public.sync_staging (user_id, span, page, cursor_after, records)
values (%(user_id)s, %(span)s, %(page)s, %(cursor)s, %(records)s)
on conflict (user_id, span, page) do update
  set cursor_after = excluded.cursor_after, records = excluded.records, created_at = now()
