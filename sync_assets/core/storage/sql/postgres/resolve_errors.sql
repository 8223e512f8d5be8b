-- A sync of the user completed: the failures of their earlier sessions over months within
-- this one's (a later retry of the same work succeeded) are marked resolved, kept for the
-- record. Only retryable failures: a revoked token or bad settings need a human to say so.
update public.sync_sessions
set last_error = jsonb_set(last_error, '{resolved}', 'true'::jsonb),
    updated_at = now()
where user_id = %(user_id)s::uuid
  and id <> %(session_id)s::uuid
  and status = 'failed'
  and last_error is not null
  and coalesce((last_error ->> 'resolved')::boolean, false) = false
  and coalesce((last_error ->> 'retryable')::boolean, false)
  and started_at < %(started_at)s
  and time_range_start >= %(time_range_start)s
  and time_range_end <= %(time_range_end)s
