-- A sync of the user completed: the failures of their earlier sessions over months within
-- this one's (a later retry of the same work succeeded) are marked resolved, kept for the
-- record. Only retryable failures: a revoked token or bad settings need a human to say so.
update sync_sessions
set last_error = json_set(last_error, '$.resolved', json('true')),
    updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
where user_id = :user_id
  and id <> :session_id
  and status = 'failed'
  and last_error is not null
  and coalesce(json_extract(last_error, '$.resolved'), 0) = 0
  and coalesce(json_extract(last_error, '$.retryable'), 0) = 1
  and started_at < :started_at
  and time_range_start >= :time_range_start
  and time_range_end <= :time_range_end
