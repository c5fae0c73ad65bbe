-- insert_admin_user --
-- $1 id, $2 email, $3 name, $4 role, $5 password hash
INSERT INTO admin_users (id, email, name, role, password_hash) VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- admin_user_by_email --
-- $1 email (any case)
SELECT * FROM admin_users WHERE lower(email) = lower($1);

-- admin_user_by_id --
-- $1 user id
SELECT * FROM admin_users WHERE id = $1;

-- set_admin_user_password --
-- $1 user id, $2 password hash
UPDATE admin_users SET password_hash = $2, password_changed_at = now(), updated_at = now()
WHERE id = $1 RETURNING *;

-- touch_admin_user_login --
-- $1 user id, $2 new password hash when a rehash was due (NULL: keep)
UPDATE admin_users SET last_login_at = now(), password_hash = coalesce($2, password_hash) WHERE id = $1;

-- insert_merchant_user --
-- $1 id, $2 merchant id, $3 email, $4 name, $5 role, $6 password hash
INSERT INTO merchant_users (id, merchant_id, email, name, role, password_hash) VALUES ($1, $2, $3, $4, $5, $6)
RETURNING *;

-- merchant_user_by_email --
-- $1 email (any case)
SELECT * FROM merchant_users WHERE lower(email) = lower($1);

-- merchant_user_by_id --
-- $1 user id
SELECT * FROM merchant_users WHERE id = $1;

-- set_merchant_user_password --
-- $1 user id, $2 password hash
UPDATE merchant_users SET password_hash = $2, password_changed_at = now(), updated_at = now()
WHERE id = $1 RETURNING *;

-- touch_merchant_user_login --
-- $1 user id, $2 new password hash when a rehash was due (NULL: keep)
UPDATE merchant_users SET last_login_at = now(), password_hash = coalesce($2, password_hash) WHERE id = $1;

-- insert_auth_token --
-- $1 id, $2 token sha256, $3 user kind, $4 user id, $5 lifetime in seconds, $6 ip
INSERT INTO auth_tokens (id, token_sha256, user_kind, user_id, expires_at, ip)
VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5), $6)
RETURNING id, expires_at;

-- principal_by_token --
-- $1 token sha256. A live token of an active user, with what the principal needs.
SELECT t.id AS token_id, t.token_sha256, t.user_kind, t.user_id,
       coalesce(a.role, m.role) AS role, m.merchant_id, coalesce(a.email, m.email) AS email
FROM auth_tokens t
LEFT JOIN admin_users a ON t.user_kind = 'admin' AND a.id = t.user_id AND a.status = 'active'
LEFT JOIN merchant_users m ON t.user_kind = 'merchant' AND m.id = t.user_id AND m.status = 'active'
WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL AND t.expires_at > now()
  AND (a.id IS NOT NULL OR m.id IS NOT NULL);

-- revoke_auth_token --
-- $1 token sha256
UPDATE auth_tokens SET revoked_at = now() WHERE token_sha256 = $1 AND revoked_at IS NULL
RETURNING id, user_kind, user_id;

-- revoke_user_tokens --
-- $1 user kind, $2 user id: a password rotation ends every session of the user
UPDATE auth_tokens SET revoked_at = now() WHERE user_kind = $1 AND user_id = $2 AND revoked_at IS NULL;

-- purge_auth_tokens --
-- $1 seconds a dead token is kept for investigation
DELETE FROM auth_tokens
WHERE expires_at < now() - make_interval(secs => $1)
   OR revoked_at < now() - make_interval(secs => $1);

-- login_backoff_wait --
-- $1 kind, $2 email (lower case): seconds the account must still wait before a login is tried, if any.
SELECT extract(epoch FROM blocked_until - now())::float8 AS wait_s
FROM login_backoff
WHERE kind = $1 AND email = $2 AND blocked_until > now();

-- login_backoff_fail --
-- $1 kind, $2 email, $3 free failures, $4 longest wait (s), $5 forget after (s): count one failure; past
-- the free ones the wait doubles from 1 s up to $4. A quiet spell of $5 starts the count again.
INSERT INTO login_backoff AS b (kind, email, failures, last_failure_at)
VALUES ($1, $2, 1, now())
ON CONFLICT (kind, email) DO UPDATE
SET failures = CASE WHEN b.last_failure_at < now() - make_interval(secs => $5) THEN 1 ELSE b.failures + 1 END,
    last_failure_at = now(),
    blocked_until = CASE
        WHEN b.last_failure_at >= now() - make_interval(secs => $5) AND b.failures + 1 > $3
        THEN now() + make_interval(secs => least($4::float8, power(2, least(b.failures + 1 - $3 - 1, 30))::float8))
    END;

-- login_backoff_clear --
-- $1 kind, $2 email: a successful login starts the count again.
DELETE FROM login_backoff WHERE kind = $1 AND email = $2;

-- login_backoff_purge --
-- $1 seconds: accounts quiet that long have nothing left to remember.
DELETE FROM login_backoff WHERE last_failure_at < now() - make_interval(secs => $1);

-- list_admin_users --
-- $1 cursor, $2 limit + 1, $3 status filter, $4 role filter, $5 search as an ILIKE pattern on email and name
SELECT *, NULL::text AS merchant_name FROM admin_users
WHERE ($1::text IS NULL OR id < $1)
  AND ($3::text IS NULL OR status = $3)
  AND ($4::text IS NULL OR role = $4)
  AND ($5::text IS NULL OR email ILIKE $5 OR name ILIKE $5)
ORDER BY id DESC LIMIT $2;

-- list_merchant_users --
-- $1 cursor, $2 limit + 1, $3 status filter, $4 role filter, $5 search pattern (email, name), $6 merchant id
SELECT u.*, m.name AS merchant_name FROM merchant_users u JOIN merchants m ON m.id = u.merchant_id
WHERE ($1::text IS NULL OR u.id < $1)
  AND ($3::text IS NULL OR u.status = $3)
  AND ($4::text IS NULL OR u.role = $4)
  AND ($5::text IS NULL OR u.email ILIKE $5 OR u.name ILIKE $5)
  AND ($6::text IS NULL OR u.merchant_id = $6)
ORDER BY u.id DESC LIMIT $2;

-- update_admin_user --
-- $1 user id, $2 role (NULL: keep), $3 status (NULL: keep)
UPDATE admin_users SET role = coalesce($2, role), status = coalesce($3, status), updated_at = now()
WHERE id = $1 RETURNING *;

-- update_merchant_user --
-- $1 user id, $2 role (NULL: keep), $3 status (NULL: keep)
UPDATE merchant_users SET role = coalesce($2, role), status = coalesce($3, status), updated_at = now()
WHERE id = $1 RETURNING *;
