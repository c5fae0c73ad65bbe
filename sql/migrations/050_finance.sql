-- Finance: settlement batches built from merchant_payable ledger entries, their
-- entries (with the one-live-batch guarantee), adjustments, event history, and
-- async export jobs. Ledger rows are never touched: a batch only points at them.

CREATE TABLE settlement_batches (
    id text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants (id),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid', 'failed', 'cancelled')),
    cutoff timestamptz NOT NULL,                  -- payables created up to here were taken
    entry_count integer NOT NULL CHECK (entry_count >= 0),
    gross_amount bigint NOT NULL CHECK (gross_amount >= 0),
    fee_amount bigint NOT NULL CHECK (fee_amount >= 0),
    payable_amount bigint NOT NULL CHECK (payable_amount >= 0),
    adjustment_amount bigint NOT NULL DEFAULT 0,
    -- Derived, so it can never drift from its parts.
    adjusted_payable_amount bigint GENERATED ALWAYS AS (payable_amount + adjustment_amount) STORED,
    currency text NOT NULL DEFAULT 'IDR',
    payout_reference text,
    note text,
    failure_reason text,
    cancellation_reason text,
    reprocessed_from_batch_id text REFERENCES settlement_batches (id),
    reprocessed_into_batch_id text REFERENCES settlement_batches (id),
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    paid_at timestamptz,
    failed_at timestamptz,
    cancelled_at timestamptz,
    CHECK (gross_amount = fee_amount + payable_amount),
    CHECK (payable_amount + adjustment_amount >= 0),
    CHECK ((status = 'paid') = (paid_at IS NOT NULL)),
    CHECK (status <> 'paid' OR payout_reference IS NOT NULL)
);
CREATE INDEX settlement_batches_merchant ON settlement_batches (merchant_id, id);
CREATE INDEX settlement_batches_status ON settlement_batches (status, id);
-- A batch is reprocessed at most once.
CREATE UNIQUE INDEX settlement_batches_reprocessed_from ON settlement_batches (reprocessed_from_batch_id)
    WHERE reprocessed_from_batch_id IS NOT NULL;

-- Which merchant_payable ledger entries a batch holds. `live` is true while the
-- batch is pending or paid; failing or cancelling a batch releases its rows
-- (live = false). The partial unique index is the guarantee that an entry is in
-- at most one live batch, whatever the application does concurrently.
CREATE TABLE settlement_batch_entries (
    batch_id text NOT NULL REFERENCES settlement_batches (id),
    ledger_entry_id text NOT NULL REFERENCES ledger_entries (id),
    transaction_id text NOT NULL REFERENCES transactions (id),
    merchant_id text NOT NULL REFERENCES merchants (id),
    -- Snapshot of the transaction's three ledger rows (immutable, so it cannot go stale).
    gross_amount bigint NOT NULL,
    fee_amount bigint NOT NULL,
    payable_amount bigint NOT NULL,
    live boolean NOT NULL DEFAULT true,
    released_at timestamptz,
    PRIMARY KEY (batch_id, ledger_entry_id),
    CHECK (gross_amount = fee_amount + payable_amount),
    CHECK (live = (released_at IS NULL))
);
CREATE UNIQUE INDEX settlement_batch_entries_one_live ON settlement_batch_entries (ledger_entry_id) WHERE live;
CREATE INDEX settlement_batch_entries_transaction ON settlement_batch_entries (transaction_id);

-- Entries may only be released (live true -> false), never changed otherwise or deleted.
CREATE FUNCTION settlement_batch_entries_release_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NOT (OLD.live AND NOT NEW.live)
       OR (NEW.batch_id, NEW.ledger_entry_id, NEW.transaction_id, NEW.merchant_id,
           NEW.gross_amount, NEW.fee_amount, NEW.payable_amount)
          IS DISTINCT FROM (OLD.batch_id, OLD.ledger_entry_id, OLD.transaction_id, OLD.merchant_id,
                            OLD.gross_amount, OLD.fee_amount, OLD.payable_amount) THEN
        RAISE EXCEPTION 'settlement_batch_entries rows can only be released' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER settlement_batch_entries_guard BEFORE UPDATE OR DELETE ON settlement_batch_entries
    FOR EACH ROW EXECUTE FUNCTION settlement_batch_entries_release_only();

-- Adjustments change a batch's adjusted payable; rows of their own, append-only.
CREATE TABLE settlement_batch_adjustments (
    id text PRIMARY KEY,
    batch_id text NOT NULL REFERENCES settlement_batches (id),
    merchant_id text NOT NULL REFERENCES merchants (id),
    adjustment_type text NOT NULL CHECK (adjustment_type IN ('bank_fee', 'chargeback', 'correction', 'bonus')),
    amount bigint NOT NULL CHECK (amount <> 0),
    reason text NOT NULL,
    carried_from_adjustment_id text REFERENCES settlement_batch_adjustments (id),
    actor_type text NOT NULL,
    actor_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX settlement_batch_adjustments_batch ON settlement_batch_adjustments (batch_id, id);
CREATE INDEX settlement_batch_adjustments_merchant ON settlement_batch_adjustments (merchant_id, id);
CREATE INDEX settlement_batch_adjustments_time ON settlement_batch_adjustments (created_at);
CREATE TRIGGER settlement_batch_adjustments_append_only BEFORE UPDATE OR DELETE ON settlement_batch_adjustments
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- A batch's history: created, paid, failed, cancelled, reprocessed, adjusted, reference_updated.
CREATE TABLE settlement_batch_events (
    id text PRIMARY KEY,
    batch_id text NOT NULL REFERENCES settlement_batches (id),
    event_type text NOT NULL,
    from_status text,
    to_status text,
    actor_type text NOT NULL,
    actor_id text,
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX settlement_batch_events_batch ON settlement_batch_events (batch_id, id);
CREATE TRIGGER settlement_batch_events_append_only BEFORE UPDATE OR DELETE ON settlement_batch_events
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Async exports, processed by the `exports.process` worker job.
CREATE TABLE export_jobs (
    id text PRIMARY KEY,
    export_type text NOT NULL CHECK (export_type IN ('settlement_adjustments')),
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'expired')),
    filters jsonb NOT NULL DEFAULT '{}'::jsonb,
    requested_by_type text NOT NULL,
    requested_by_id text,
    worker_id text,
    attempts integer NOT NULL DEFAULT 0,
    row_count integer,
    byte_size bigint,
    file_name text,
    error_code text,
    error_message text,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    heartbeat_at timestamptz,
    completed_at timestamptz,
    expires_at timestamptz,
    expired_at timestamptz
);
CREATE INDEX export_jobs_pending ON export_jobs (id) WHERE status = 'pending';
CREATE INDEX export_jobs_running ON export_jobs (heartbeat_at) WHERE status = 'running';
CREATE INDEX export_jobs_completed_expiry ON export_jobs (expires_at) WHERE status = 'completed';
