-- Merchant onboarding details, platform and merchant users, login tokens,
-- and the Idempotency-Key store shared by every sensitive write.

-- Readable codes: merchants M000001..., terminals T000001... (a sequence, so no
-- retry loop on collisions; terminal codes stay far below the QRIS 25-char limit).
CREATE SEQUENCE merchant_code_seq;
CREATE SEQUENCE terminal_code_seq;

ALTER TABLE merchants
    ADD COLUMN approved_at timestamptz,
    ADD COLUMN rejected_at timestamptz,
    ADD COLUMN reviewed_by text;
CREATE INDEX merchants_status ON merchants (status, id);

-- Platform staff. Emails are compared case-insensitively.
CREATE TABLE admin_users (
    id text PRIMARY KEY,
    email text NOT NULL,
    name text NOT NULL,
    role text NOT NULL CHECK (role IN ('admin', 'finance', 'ops', 'support', 'viewer')),
    password_hash text NOT NULL,               -- argon2id (PHC string)
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    last_login_at timestamptz,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX admin_users_email ON admin_users (lower(email));

-- A merchant's own staff; one login email belongs to one merchant.
CREATE TABLE merchant_users (
    id text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants (id),
    email text NOT NULL,
    name text NOT NULL,
    role text NOT NULL CHECK (role IN ('owner', 'finance', 'ops', 'viewer')),
    password_hash text NOT NULL,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    last_login_at timestamptz,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX merchant_users_email ON merchant_users (lower(email));
CREATE INDEX merchant_users_merchant ON merchant_users (merchant_id, id);

-- Bearer tokens issued by /admin/login and /merchant/login. Only the SHA-256
-- of the token is stored; a stolen table does not give working tokens.
CREATE TABLE auth_tokens (
    id text PRIMARY KEY,
    token_sha256 bytea NOT NULL UNIQUE,
    user_kind text NOT NULL CHECK (user_kind IN ('admin', 'merchant')),
    user_id text NOT NULL,
    issued_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    ip text
);
CREATE INDEX auth_tokens_user ON auth_tokens (user_kind, user_id);
CREATE INDEX auth_tokens_expires ON auth_tokens (expires_at);

-- One row per (caller, Idempotency-Key): claimed before the write runs, then
-- completed with the exact first response (status, headers, body bytes).
CREATE TABLE idempotency_keys (
    caller text NOT NULL,                      -- "<principal kind>:<principal id>"
    key text NOT NULL,
    fingerprint text NOT NULL,                 -- sha256 of method, path and body
    method text NOT NULL,
    path text NOT NULL,
    state text NOT NULL DEFAULT 'in_progress' CHECK (state IN ('in_progress', 'completed')),
    response_status integer,
    response_headers jsonb,
    response_body bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
