-- Client connections open on the server, against what it lets non-superusers open.
select
  (select count(*) from pg_stat_activity where backend_type = 'client backend')::int as in_use,
  (current_setting('max_connections')::int
   - current_setting('superuser_reserved_connections')::int) as allowed
