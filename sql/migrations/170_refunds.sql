-- Refunds (SPEC §15, docs/finance.md "Refunds"): full and partial, asked for by an
-- operator (with a second person's approval above REFUND_APPROVAL_ABOVE) or a
-- partner (SNAP qr-mpm-refund), carried out by the platform or through the
-- merchant's SNAP acquirer.
--
-- Every amount rule is decided here, under the payment's row lock: a refund
-- reserves its amount from the moment it is asked for (pending_approval, pending),
-- so two concurrent refunds can never add up to more than the payment; a failed or
-- rejected one gives its amount back. The ledger is written only when a refund
-- succeeds, as three append-only rows that mirror the payment's:
--   refund_gross   = the amount returned to the customer
--   refund_fee     = the MDR the platform gives back (0 unless FINANCE_REFUND_RETURNS_MDR)
--   refund_payable = what the merchant gives back = refund_gross - refund_fee
-- so for every payment, (gross_income - Σ refund_gross) = (platform_fee - Σ refund_fee)
-- + (merchant_payable - Σ refund_payable), refunds included.

ALTER TABLE transactions DROP CONSTRAINT transactions_status_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_status_check
    CHECK (status IN ('pending', 'paid', 'expired', 'failed', 'partially_refunded', 'refunded'));
-- A refunded payment was paid: it keeps its paid_at.
ALTER TABLE transactions DROP CONSTRAINT transactions_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_paid_at_when_paid
    CHECK ((status IN ('paid', 'partially_refunded', 'refunded')) = (paid_at IS NOT NULL));
-- What succeeded refunds returned; the database's last word on "never more than the payment".
ALTER TABLE transactions ADD COLUMN refunded_amount bigint NOT NULL DEFAULT 0;
ALTER TABLE transactions ADD CONSTRAINT transactions_refunded_within_amount
    CHECK (refunded_amount BETWEEN 0 AND amount);
ALTER TABLE transactions ADD CONSTRAINT transactions_refund_status
    CHECK ((status = 'refunded') = (refunded_amount = amount)
           AND (status = 'partially_refunded') = (refunded_amount > 0 AND refunded_amount < amount));

CREATE TABLE refunds (
    id text PRIMARY KEY,
    transaction_id text NOT NULL REFERENCES transactions (id),
    merchant_id text NOT NULL REFERENCES merchants (id),
    amount bigint NOT NULL CHECK (amount > 0),
    status text NOT NULL CHECK (status IN ('pending_approval', 'pending', 'succeeded', 'failed', 'rejected')),
    reason text NOT NULL,
    source text NOT NULL CHECK (source IN ('admin', 'partner')),
    requested_by text NOT NULL,           -- user id, "static-admin-token", or the partner id
    decided_by text,                      -- who approved or rejected a pending_approval one
    decided_at timestamptz,
    decision_note text,
    partner_id text REFERENCES partners (id),
    partner_refund_no text,               -- SNAP partnerRefundNo, unique per partner
    acquirer_code text,                   -- set when the refund goes through the merchant's SNAP acquirer
    acquirer_refund_no text,              -- the acquirer's refundNo
    fee_returned bigint CHECK (fee_returned >= 0),
    failure_reason text,
    completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- The four-eyes rule: whoever asked cannot be the one who approves.
    CHECK (decided_by IS NULL OR decided_by <> requested_by),
    CHECK ((status IN ('succeeded', 'failed')) = (completed_at IS NOT NULL)),
    CHECK ((status = 'succeeded') = (fee_returned IS NOT NULL)),
    CHECK ((partner_id IS NULL) = (partner_refund_no IS NULL))
);
CREATE INDEX refunds_transaction ON refunds (transaction_id, id);
CREATE INDEX refunds_merchant ON refunds (merchant_id, id);
CREATE INDEX refunds_awaiting_approval ON refunds (id) WHERE status = 'pending_approval';
CREATE UNIQUE INDEX refunds_partner_refund_no ON refunds (partner_id, partner_refund_no) WHERE partner_id IS NOT NULL;

-- Refund rows in the ledger: several refunds per payment, one set of rows per refund.
ALTER TABLE ledger_entries ADD COLUMN refund_id text REFERENCES refunds (id);
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_entry_type_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_entry_type_check
    CHECK (entry_type IN ('gross_income', 'platform_fee', 'merchant_payable',
                          'refund_gross', 'refund_fee', 'refund_payable'));
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_refund_rows_name_their_refund
    CHECK ((refund_id IS NOT NULL) = (entry_type LIKE 'refund\_%'));
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_transaction_id_entry_type_key;
CREATE UNIQUE INDEX ledger_entries_payment_rows ON ledger_entries (transaction_id, entry_type) WHERE refund_id IS NULL;
CREATE UNIQUE INDEX ledger_entries_refund_rows ON ledger_entries (refund_id, entry_type) WHERE refund_id IS NOT NULL;

-- A refund's payable row is a negative line of the merchant's next settlement batch, so a batch's
-- gross and fee may be below zero when refunds outweigh its payments; its payable may not (a merchant
-- owing more than it is owed is held, core/finance/settlements.py), and gross = fee + payable still holds.
ALTER TABLE settlement_batches DROP CONSTRAINT settlement_batches_gross_amount_check;
ALTER TABLE settlement_batches DROP CONSTRAINT settlement_batches_fee_amount_check;

-- payment_transition_refusal (080): a refunded or partially refunded payment is as final as a paid
-- one (a late paid notification must not pay it again); otherwise as in 080.
CREATE OR REPLACE FUNCTION payment_transition_refusal(from_status text, to_status text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE
        WHEN from_status IN ('paid', 'partially_refunded', 'refunded') THEN 'transaction_final'
        WHEN to_status <> from_status AND from_status <> 'pending' AND to_status <> 'paid' THEN 'transaction_final'
    END
$$;

-- partner_notify_status (140): a partial refund is told as SNAP's 04 too (the standard has no
-- "partially refunded"); its description says which. Otherwise as in 140.
CREATE OR REPLACE FUNCTION partner_notify_status(p_to_status text, p_cancelled boolean, OUT code text,
                                                 OUT description text)
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
               WHEN p_to_status = 'paid' THEN '00'
               WHEN p_to_status IN ('refunded', 'partially_refunded') THEN '04'
               WHEN p_cancelled THEN '05'
               ELSE '06'
           END,
           CASE
               WHEN p_to_status = 'paid' THEN 'Success'
               WHEN p_to_status = 'refunded' THEN 'Refunded'
               WHEN p_to_status = 'partially_refunded' THEN 'Partially Refunded'
               WHEN p_cancelled THEN 'Cancelled'
               WHEN p_to_status = 'expired' THEN 'Expired'
               ELSE 'Failed'
           END
$$;

-- The MDR a refund gives back when the platform returns it: the payment's fee in proportion,
-- computed on the running total so that partial refunds add up to exactly the whole fee
-- (half up, like payment_fee).
CREATE FUNCTION refund_fee_share(p_fee bigint, p_gross bigint, p_refunded_before bigint, p_amount bigint)
RETURNS bigint LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT (p_fee * (p_refunded_before + p_amount) * 2 + p_gross) / (2 * p_gross)
         - (p_fee * p_refunded_before * 2 + p_gross) / (2 * p_gross)
$$;

-- A refund asked for (p: a core.refunds.service.RefundRequest). Under the payment's row lock:
-- the payment must be paid or partially refunded (QR002, DETAIL its status), the amount positive
-- (QR001) and at most what is left once every refund not failed or rejected is counted (QR003,
-- DETAIL what is left). Above p.approval_above it waits for a second person (pending_approval).
CREATE FUNCTION refund_request(p jsonb) RETURNS refunds LANGUAGE plpgsql AS $$
DECLARE
    v_txn transactions;
    v_amount bigint := (p->>'amount')::bigint;
    v_reserved bigint;
    created refunds;
BEGIN
    IF v_amount IS NULL OR v_amount <= 0 THEN
        RAISE EXCEPTION 'a refund amount must be a positive number of rupiah' USING ERRCODE = 'QR001';
    END IF;
    SELECT * INTO v_txn FROM transactions WHERE id = p->>'transaction_id' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'transaction % does not exist', p->>'transaction_id' USING ERRCODE = 'no_data_found';
    END IF;
    IF v_txn.status NOT IN ('paid', 'partially_refunded') THEN
        RAISE EXCEPTION 'transaction % is %, not refundable', v_txn.id, v_txn.status
            USING ERRCODE = 'QR002', DETAIL = v_txn.status;
    END IF;
    SELECT COALESCE(sum(r.amount), 0) INTO v_reserved FROM refunds r
    WHERE r.transaction_id = v_txn.id AND r.status IN ('pending_approval', 'pending', 'succeeded');
    IF v_amount > v_txn.amount - v_reserved THEN
        RAISE EXCEPTION 'refund of % is above the % left of transaction %', v_amount, v_txn.amount - v_reserved, v_txn.id
            USING ERRCODE = 'QR003', DETAIL = (v_txn.amount - v_reserved)::text;
    END IF;
    INSERT INTO refunds (id, transaction_id, merchant_id, amount, status, reason, source, requested_by,
                         partner_id, partner_refund_no, acquirer_code)
    VALUES (p->>'id', v_txn.id, v_txn.merchant_id, v_amount,
            CASE WHEN (p->>'approval_above')::bigint IS NOT NULL AND v_amount > (p->>'approval_above')::bigint
                 THEN 'pending_approval' ELSE 'pending' END,
            p->>'reason', p->>'source', p->>'requested_by', p->>'partner_id', p->>'partner_refund_no',
            p->>'acquirer_code')
    RETURNING * INTO created;
    INSERT INTO transaction_events (id, transaction_id, event_type, source, payload)
    VALUES (p->>'event_id', v_txn.id, 'refund_requested', p->>'source',
            jsonb_build_object('refund_id', created.id, 'amount', v_amount, 'status', created.status));
    IF jsonb_typeof(p->'audit') = 'object' THEN
        PERFORM record_audit(p->'audit', created.id, created.merchant_id);
    END IF;
    RETURN created;
END
$$;

-- A second person's decision on a refund waiting for approval (p: a core.refunds.service.RefundDecision):
-- approve → pending, reject → rejected (its amount is free again). Not waiting: QR004 (DETAIL its status);
-- the requester approving their own: QR005.
CREATE FUNCTION refund_decide(p jsonb) RETURNS refunds LANGUAGE plpgsql AS $$
DECLARE
    v_refund refunds;
    decided refunds;
BEGIN
    SELECT * INTO v_refund FROM refunds WHERE id = p->>'refund_id' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'refund % does not exist', p->>'refund_id' USING ERRCODE = 'no_data_found';
    END IF;
    IF v_refund.status <> 'pending_approval' THEN
        RAISE EXCEPTION 'refund % is %, not waiting for approval', v_refund.id, v_refund.status
            USING ERRCODE = 'QR004', DETAIL = v_refund.status;
    END IF;
    IF p->>'decision' = 'approve' AND p->>'decided_by' = v_refund.requested_by THEN
        RAISE EXCEPTION 'refund % was asked for by the same person', v_refund.id USING ERRCODE = 'QR005';
    END IF;
    UPDATE refunds
    SET status = CASE WHEN p->>'decision' = 'approve' THEN 'pending' ELSE 'rejected' END,
        decided_by = p->>'decided_by', decided_at = now(), decision_note = p->>'note', updated_at = now()
    WHERE id = v_refund.id
    RETURNING * INTO decided;
    INSERT INTO transaction_events (id, transaction_id, event_type, source, payload)
    VALUES (p->>'event_id', decided.transaction_id,
            CASE WHEN decided.status = 'pending' THEN 'refund_approved' ELSE 'refund_rejected' END, 'admin',
            jsonb_build_object('refund_id', decided.id, 'amount', decided.amount, 'decided_by', decided.decided_by));
    IF jsonb_typeof(p->'audit') = 'object' THEN
        PERFORM record_audit(p->'audit', decided.id, decided.merchant_id);
    END IF;
    RETURN decided;
END
$$;

-- A pending refund's outcome (p: a core.refunds.service.RefundOutcome). succeeded: the three ledger
-- rows (MDR given back in proportion when p.returns_mdr), the payment becomes partially_refunded or
-- refunded with its event (which queues the partner's notification, 140), and p.downlink (the
-- soundbox's announcement) when given. failed: only the refund row and an event; nothing was written
-- to the ledger, so nothing is compensated. A refund already in that outcome is returned unchanged
-- (a retried completion); one in another state is QR004.
CREATE FUNCTION refund_complete(p jsonb) RETURNS refunds LANGUAGE plpgsql AS $$
DECLARE
    v_refund refunds;
    v_txn transactions;
    v_outcome text := p->>'outcome';
    v_fee bigint;
    v_payment_fee bigint;
    v_to text;
    done refunds;
BEGIN
    -- The payment's lock first, as refund_request takes it: one order, no deadlock.
    SELECT t.* INTO v_txn FROM transactions t JOIN refunds r ON r.transaction_id = t.id
    WHERE r.id = p->>'refund_id' FOR UPDATE OF t;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'refund % does not exist', p->>'refund_id' USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO v_refund FROM refunds WHERE id = p->>'refund_id' FOR UPDATE;
    IF v_refund.status = v_outcome THEN
        RETURN v_refund;
    END IF;
    IF v_refund.status <> 'pending' THEN
        RAISE EXCEPTION 'refund % is %, not pending', v_refund.id, v_refund.status
            USING ERRCODE = 'QR004', DETAIL = v_refund.status;
    END IF;
    IF v_outcome = 'failed' THEN
        UPDATE refunds SET status = 'failed', failure_reason = p->>'failure_reason',
                           acquirer_refund_no = COALESCE(p->>'acquirer_refund_no', acquirer_refund_no),
                           completed_at = now(), updated_at = now()
        WHERE id = v_refund.id RETURNING * INTO done;
        INSERT INTO transaction_events (id, transaction_id, event_type, source, payload)
        VALUES (p->>'event_id', v_txn.id, 'refund_failed', p->>'source',
                jsonb_build_object('refund_id', done.id, 'amount', done.amount, 'reason', done.failure_reason));
        RETURN done;
    END IF;
    v_fee := 0;
    IF (p->>'returns_mdr')::boolean THEN
        SELECT amount INTO v_payment_fee FROM ledger_entries
        WHERE transaction_id = v_txn.id AND entry_type = 'platform_fee' AND refund_id IS NULL;
        v_fee := refund_fee_share(v_payment_fee, v_txn.amount, v_txn.refunded_amount, v_refund.amount);
    END IF;
    UPDATE refunds SET status = 'succeeded', fee_returned = v_fee,
                       acquirer_refund_no = COALESCE(p->>'acquirer_refund_no', acquirer_refund_no),
                       completed_at = now(), updated_at = now()
    WHERE id = v_refund.id RETURNING * INTO done;
    INSERT INTO ledger_entries (id, transaction_id, merchant_id, entry_type, amount, refund_id)
    VALUES (p->'ledger_ids'->>0, v_txn.id, v_txn.merchant_id, 'refund_gross', done.amount, done.id),
           (p->'ledger_ids'->>1, v_txn.id, v_txn.merchant_id, 'refund_fee', v_fee, done.id),
           (p->'ledger_ids'->>2, v_txn.id, v_txn.merchant_id, 'refund_payable', done.amount - v_fee, done.id);
    v_to := CASE WHEN v_txn.refunded_amount + done.amount = v_txn.amount THEN 'refunded' ELSE 'partially_refunded' END;
    UPDATE transactions SET status = v_to, refunded_amount = refunded_amount + done.amount, updated_at = now()
    WHERE id = v_txn.id;
    INSERT INTO transaction_events (id, transaction_id, event_type, from_status, to_status, source, payload)
    VALUES (p->>'event_id', v_txn.id, v_to, v_txn.status, v_to, p->>'source',
            jsonb_build_object('refund_id', done.id, 'amount', done.amount, 'fee_returned', v_fee,
                               'refunded_amount', v_txn.refunded_amount + done.amount));
    IF jsonb_typeof(p->'downlink') = 'object' THEN
        PERFORM enqueue_downlink(p->'downlink');
    END IF;
    RETURN done;
END
$$;
