-- The payment spine: transactions and their events, the ledger, acquirer
-- callbacks (dedupe), reconciliation exceptions and the device outbox.

CREATE TABLE transactions (
    id text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants (id),
    outlet_id text NOT NULL REFERENCES outlets (id),
    terminal_id text NOT NULL REFERENCES terminals (id),
    device_id text,                       -- the device that asked for a dynamic QR
    kind text NOT NULL CHECK (kind IN ('dynamic', 'static')),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid', 'expired', 'failed')),
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL DEFAULT 'IDR' CHECK (currency = 'IDR'),
    reference text NOT NULL UNIQUE,       -- bill number, QRIS tag 62.01
    qr_payload text,
    provider_reference text UNIQUE,       -- acquirer RRN once paid/failed
    fee_bps integer NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
    expires_at timestamptz,
    paid_at timestamptz,
    failure_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'paid') = (paid_at IS NOT NULL))
);
CREATE INDEX transactions_merchant ON transactions (merchant_id, id);
CREATE INDEX transactions_terminal ON transactions (terminal_id, id);
CREATE INDEX transactions_status ON transactions (status, id);
CREATE INDEX transactions_pending_expiry ON transactions (expires_at) WHERE status = 'pending';

-- Every state change of a transaction; append-only.
CREATE TABLE transaction_events (
    id text PRIMARY KEY,
    transaction_id text NOT NULL REFERENCES transactions (id),
    event_type text NOT NULL,
    from_status text,
    to_status text,
    source text NOT NULL,                 -- admin | device | callback | sweep | system
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transaction_events_transaction ON transaction_events (transaction_id, id);
CREATE TRIGGER transaction_events_append_only BEFORE UPDATE OR DELETE ON transaction_events
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Money: written once when a transaction becomes paid, never updated or deleted.
-- platform_fee + merchant_payable = gross_income for every transaction.
CREATE TABLE ledger_entries (
    id text PRIMARY KEY,
    transaction_id text NOT NULL REFERENCES transactions (id),
    merchant_id text NOT NULL REFERENCES merchants (id),
    entry_type text NOT NULL CHECK (entry_type IN ('gross_income', 'platform_fee', 'merchant_payable')),
    amount bigint NOT NULL CHECK (amount >= 0),
    currency text NOT NULL DEFAULT 'IDR',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (transaction_id, entry_type)
);
CREATE INDEX ledger_entries_merchant ON ledger_entries (merchant_id, entry_type, id);
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- One row per accepted acquirer notification: the unique keys are the dedupe,
-- and `response` is what every replay answers.
CREATE TABLE acquirer_callbacks (
    event_id text PRIMARY KEY,
    provider_reference text NOT NULL UNIQUE,
    status text NOT NULL,
    transaction_id text REFERENCES transactions (id),
    amount bigint NOT NULL,
    response jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Notifications the platform could not apply but finance must see.
CREATE TABLE reconciliation_exceptions (
    id text PRIMARY KEY,
    kind text NOT NULL,                   -- amount_mismatch | late_payment | unknown_transaction ...
    event_id text NOT NULL,
    transaction_id text,
    provider_reference text,
    expected_amount bigint,
    received_amount bigint,
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, event_id)
);

-- Downlinks to devices, written in the transaction of the change they announce
-- and delivered at least once by the broker process (LISTEN device_outbox).
CREATE TABLE device_outbox (
    id text PRIMARY KEY,
    message_id text NOT NULL UNIQUE,
    device_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('payment', 'dynamic_qr_response', 'config', 'command')),
    topic text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'acked', 'failed', 'expired', 'skipped_late', 'superseded')),
    transaction_id text REFERENCES transactions (id),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    acked_at timestamptz,
    last_error text
);
CREATE INDEX device_outbox_open ON device_outbox (device_id, id) WHERE status IN ('pending', 'sent');
CREATE INDEX device_outbox_due ON device_outbox (next_attempt_at) WHERE status IN ('pending', 'sent');
CREATE INDEX device_outbox_device_kind ON device_outbox (device_id, kind, id);
CREATE INDEX device_outbox_transaction ON device_outbox (transaction_id) WHERE transaction_id IS NOT NULL;
CREATE INDEX device_outbox_expiry ON device_outbox (expires_at) WHERE status IN ('pending', 'sent');
