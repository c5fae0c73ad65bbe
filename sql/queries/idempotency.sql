-- claim_idempotency_key --
-- $1 caller, $2 key, $3 fingerprint, $4 method, $5 path, $6 holder, $7 lease in seconds, $8 lifetime in seconds.
-- Returns a row only to the one caller that claimed the key: a new key, an expired one, or the same
-- request's key whose lease lapsed (its holder stopped renewing it) — taken over in one statement.
INSERT INTO idempotency_keys AS k (caller, key, fingerprint, method, path, holder, lease_expires_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7), now() + make_interval(secs => $8))
ON CONFLICT (caller, key) DO UPDATE
SET fingerprint = EXCLUDED.fingerprint, method = EXCLUDED.method, path = EXCLUDED.path,
    holder = EXCLUDED.holder, lease_expires_at = EXCLUDED.lease_expires_at, expires_at = EXCLUDED.expires_at,
    state = 'in_progress', response_status = NULL, response_headers = NULL, response_body = NULL,
    created_at = now(), completed_at = NULL
WHERE k.expires_at <= now()
   OR (k.state = 'in_progress' AND k.lease_expires_at <= now() AND k.fingerprint = EXCLUDED.fingerprint)
RETURNING k.holder;

-- idempotency_key --
-- $1 caller, $2 key
SELECT fingerprint, method, path, state, response_status, response_headers, response_body,
       extract(epoch FROM lease_expires_at - now())::float8 AS lease_left_s
FROM idempotency_keys WHERE caller = $1 AND key = $2;

-- idempotency_key_settled --
-- $1 caller, $2 key: has anything a waiter waits for happened (answered, released, lease lapsed)?
SELECT coalesce((SELECT state <> 'in_progress' OR lease_expires_at <= now()
                 FROM idempotency_keys WHERE caller = $1 AND key = $2), true);

-- renew_idempotency_lease --
-- $1 caller, $2 key, $3 holder, $4 lease in seconds. No row: the lease was lost (lapsed and taken over).
UPDATE idempotency_keys SET lease_expires_at = now() + make_interval(secs => $4)
WHERE caller = $1 AND key = $2 AND holder = $3 AND state = 'in_progress'
RETURNING 1;

-- complete_idempotency_key --
-- $1 caller, $2 key, $3 holder, $4 status, $5 headers, $6 body
UPDATE idempotency_keys
SET state = 'completed', response_status = $4, response_headers = $5, response_body = $6, completed_at = now()
WHERE caller = $1 AND key = $2 AND holder = $3 AND state = 'in_progress';

-- release_idempotency_key --
-- $1 caller, $2 key, $3 holder: the attempt gave no answer worth replaying
DELETE FROM idempotency_keys WHERE caller = $1 AND key = $2 AND holder = $3 AND state = 'in_progress';

-- purge_idempotency_keys --
DELETE FROM idempotency_keys WHERE expires_at <= now();
