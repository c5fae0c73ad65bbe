-- Cashier and POS partners (SPEC §14): the registry, the QRs they issued, and the
-- outbox of their signed notifications, written by a trigger in the transaction
-- of the status change it announces (whichever function made the change).

CREATE TABLE partners (
    id text PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    client_key text NOT NULL UNIQUE CHECK (length(client_key) BETWEEN 1 AND 64),
    public_key_pem text NOT NULL,
    -- HMAC needs the secret itself, so it is encrypted (core/partners/registry.py), never hashed.
    client_secret_enc bytea NOT NULL,
    -- Rotation with overlap: the previous secret keeps signing until previous_secret_until.
    previous_secret_enc bytea,
    previous_secret_until timestamptz,
    notify_url text NOT NULL CHECK (notify_url ~ '^https?://'),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((previous_secret_enc IS NULL) = (previous_secret_until IS NULL))
);

-- The merchants a partner may act for.
CREATE TABLE partner_merchants (
    partner_id text NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    merchant_id text NOT NULL REFERENCES merchants (id),
    PRIMARY KEY (partner_id, merchant_id)
);

-- A dynamic QR a partner generated: partnerReferenceNo is unique per partner, and the
-- transaction's id is the referenceNo it was given.
CREATE TABLE partner_qrs (
    transaction_id text PRIMARY KEY REFERENCES transactions (id),
    partner_id text NOT NULL REFERENCES partners (id),
    partner_reference_no text NOT NULL CHECK (length(partner_reference_no) BETWEEN 1 AND 64),
    cancelled_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (partner_id, partner_reference_no)
);

-- Notifications to partners. The body is the §13 notify body; the worker sends it
-- minified (core/partners/notify.py) and signs those very bytes at each attempt.
CREATE TABLE partner_outbox (
    id bigserial PRIMARY KEY,
    partner_id text NOT NULL REFERENCES partners (id),
    transaction_id text NOT NULL REFERENCES transactions (id),
    event_id text NOT NULL UNIQUE REFERENCES transaction_events (id),
    body jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
CREATE INDEX partner_outbox_due ON partner_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX partner_outbox_transaction ON partner_outbox (transaction_id, id);
CREATE INDEX partner_outbox_partner ON partner_outbox (partner_id, id);

-- Every attempt, for the per-partner delivery log; append-only.
CREATE TABLE partner_deliveries (
    id bigserial PRIMARY KEY,
    outbox_id bigint NOT NULL REFERENCES partner_outbox (id),
    partner_id text NOT NULL REFERENCES partners (id),
    attempt integer NOT NULL,
    http_status integer,
    response_code text,
    outcome text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead')),
    error text,
    latency_ms integer NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX partner_deliveries_partner ON partner_deliveries (partner_id, id);
CREATE TRIGGER partner_deliveries_append_only BEFORE UPDATE OR DELETE ON partner_deliveries
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- SNAP latestTransactionStatus of a partner's QR after an event: 00 paid, 05 cancelled,
-- 06 failed or expired (with transactionStatusDesc telling which), 04 refunded.
CREATE FUNCTION partner_notify_status(p_to_status text, p_cancelled boolean, OUT code text, OUT description text)
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
               WHEN p_to_status = 'paid' THEN '00'
               WHEN p_to_status = 'refunded' THEN '04'
               WHEN p_cancelled THEN '05'
               ELSE '06'
           END,
           CASE
               WHEN p_to_status = 'paid' THEN 'Success'
               WHEN p_to_status = 'refunded' THEN 'Refunded'
               WHEN p_cancelled THEN 'Cancelled'
               WHEN p_to_status = 'expired' THEN 'Expired'
               ELSE 'Failed'
           END
$$;

-- An event of a partner's QR queues its notification; a payment arriving after the
-- partner cancelled the QR is applied (the customer's money moved, as for any failed
-- QR) and is also a reconciliation exception, so it is never a silent payment.
CREATE FUNCTION partner_queue_notification() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_qr partner_qrs;
    v_txn transactions;
    v_status record;
BEGIN
    IF NEW.to_status IS NULL OR NEW.to_status = 'pending' THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_qr FROM partner_qrs WHERE transaction_id = NEW.transaction_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_txn FROM transactions WHERE id = NEW.transaction_id;
    v_status := partner_notify_status(NEW.to_status, v_qr.cancelled_at IS NOT NULL AND NEW.to_status <> 'paid');
    IF NEW.to_status = 'paid' AND v_qr.cancelled_at IS NOT NULL THEN
        INSERT INTO reconciliation_exceptions (id, kind, event_id, transaction_id, provider_reference,
                                               expected_amount, received_amount, payload)
        VALUES ('rex_' || NEW.id, 'paid_after_cancel', NEW.id, v_txn.id, v_txn.provider_reference,
                v_txn.amount, v_txn.amount,
                jsonb_build_object('partner_id', v_qr.partner_id, 'cancelled_at', v_qr.cancelled_at))
        ON CONFLICT (kind, event_id) DO NOTHING;
    END IF;
    INSERT INTO partner_outbox (partner_id, transaction_id, event_id, body)
    VALUES (v_qr.partner_id, v_txn.id, NEW.id, jsonb_build_object(
        'originalReferenceNo', v_txn.id,
        'originalPartnerReferenceNo', v_qr.partner_reference_no,
        'latestTransactionStatus', v_status.code,
        'transactionStatusDesc', v_status.description,
        'amount', jsonb_build_object('value', v_txn.amount::text || '.00', 'currency', v_txn.currency),
        'additionalInfo', jsonb_strip_nulls(jsonb_build_object(
            'merchantId', v_txn.merchant_id,
            'terminalId', v_txn.terminal_id,
            'paidTime', to_char(v_txn.paid_at AT TIME ZONE 'Asia/Jakarta', 'YYYY-MM-DD"T"HH24:MI:SS"+07:00"'),
            'rrn', v_txn.provider_reference,
            'reason', v_txn.failure_reason))));
    PERFORM pg_notify('partner_outbox', v_qr.partner_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER transaction_events_partner_notify AFTER INSERT ON transaction_events
    FOR EACH ROW EXECUTE FUNCTION partner_queue_notification();
