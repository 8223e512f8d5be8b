-- Serialize fetches of one provider's cell across runs and processes: a run that waited finds
-- the hours cached. Transaction-scoped (safe behind Supavisor/PgBouncer in transaction mode),
-- taken in a fixed order (no deadlock), released when the holder's transaction ends.
select pg_advisory_xact_lock(hashtextextended(%(key)s, 0))
