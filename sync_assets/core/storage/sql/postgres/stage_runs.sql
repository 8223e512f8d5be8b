-- A per-transaction staging table shaped like public.runs: COPY lands here first.
create temp table runs_stage (like public.runs including defaults) on commit drop
