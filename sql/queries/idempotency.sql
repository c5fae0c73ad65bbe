-- claim_idempotency_key --
-- $1 caller, $2 key, $3 fingerprint, $4 method, $5 path, $6 lifetime in seconds.
-- Returns a row only to the one caller that claimed the key.
INSERT INTO idempotency_keys (caller, key, fingerprint, method, path, expires_at)
VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
ON CONFLICT (caller, key) DO NOTHING
RETURNING caller;

-- idempotency_key --
-- $1 caller, $2 key
SELECT *, expires_at <= now() AS expired FROM idempotency_keys WHERE caller = $1 AND key = $2;

-- complete_idempotency_key --
-- $1 caller, $2 key, $3 status, $4 headers, $5 body
UPDATE idempotency_keys
SET state = 'completed', response_status = $3, response_headers = $4, response_body = $5, completed_at = now()
WHERE caller = $1 AND key = $2;

-- release_idempotency_key --
-- $1 caller, $2 key: the first attempt gave no answer worth replaying
DELETE FROM idempotency_keys WHERE caller = $1 AND key = $2 AND state = 'in_progress';

-- delete_expired_idempotency_key --
-- $1 caller, $2 key
DELETE FROM idempotency_keys WHERE caller = $1 AND key = $2 AND expires_at <= now();

-- purge_idempotency_keys --
DELETE FROM idempotency_keys WHERE expires_at <= now();
