-- Serialize fetches of one provider's cell across runs and processes: a run that waited finds
-- the hours cached. Session-level, taken in a fixed order (no deadlock), released after.
select pg_advisory_lock(hashtextextended(%(key)s, 0))
