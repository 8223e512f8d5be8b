delete from public.sync_staging where user_id = %(user_id)s and span = %(span)s
