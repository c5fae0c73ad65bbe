-- Merchants, their outlets and terminals (QRIS acceptance points), and the audit log.
-- Shared by every later domain; domain-specific columns come in later migrations.

CREATE TABLE merchants (
    id text PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    legal_name text,
    city text NOT NULL,
    postal_code text,
    mcc text NOT NULL DEFAULT '5499',
    nmid text UNIQUE,
    email text,
    fee_bps integer CHECK (fee_bps BETWEEN 0 AND 10000),
    status text NOT NULL DEFAULT 'pending_review'
        CHECK (status IN ('pending_review', 'active', 'rejected', 'suspended')),
    rejection_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE outlets (
    id text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants (id),
    name text NOT NULL,
    address text,
    city text,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outlets_merchant ON outlets (merchant_id, id);

CREATE TABLE terminals (
    id text PRIMARY KEY,
    outlet_id text NOT NULL REFERENCES outlets (id),
    merchant_id text NOT NULL REFERENCES merchants (id),
    name text NOT NULL,
    -- Terminal label for QRIS tag 62.07 (≤ 25 chars), unique per merchant.
    terminal_code text NOT NULL,
    static_qris text,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, terminal_code)
);
CREATE INDEX terminals_outlet ON terminals (outlet_id, id);
CREATE INDEX terminals_merchant ON terminals (merchant_id, id);

-- Every admin or merchant write, every login (success and failure), every
-- rejected callback. Append-only.
CREATE TABLE audit_logs (
    id text PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor_type text NOT NULL,          -- admin | merchant | device | system | acquirer | anonymous
    actor_id text,
    actor_role text,
    action text NOT NULL,              -- e.g. merchant.create, admin.login.failed
    entity_type text,
    entity_id text,
    merchant_id text,
    request_id text,
    ip text,
    payload jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_logs_action ON audit_logs (action, id);
CREATE INDEX audit_logs_entity ON audit_logs (entity_type, entity_id);
CREATE INDEX audit_logs_actor ON audit_logs (actor_id, id);
CREATE INDEX audit_logs_time ON audit_logs (occurred_at);

CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
