-- The span's staged pages after :after_page (0: all of them).
delete from {schema}sync_staging
where user_id = :user_id and span = :span and page > :after_page
