-- One QRIS payment is at most QRIS_MAX_AMOUNT (SPEC §15). A dynamic QR above it is never made
-- (core/payments/dynamic_qr.py); a paid notification above it still records the payment, since
-- the customer's money moved, and raises an ``amount_above_limit`` reconciliation exception in the
-- same statement, so one is never without the other.
--
-- apply_callback (080) is redefined with CREATE OR REPLACE: as in 080, plus the p.above_limit block
-- after the transition (p.above_limit: a core.payments.callbacks.AboveLimit, set by the caller
-- only for a paid amount above the limit).
CREATE OR REPLACE FUNCTION apply_callback(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_event_id text := p->>'event_id';
    v_status text := p->>'status';
    v_amount bigint := (p->>'amount')::bigint;
    claimed text;
    terminal record;
    v_txn transactions;
    rejection jsonb;
    refusal text;
BEGIN
    INSERT INTO acquirer_callbacks (event_id, provider_reference, status, amount, response)
    VALUES (v_event_id, p->>'provider_reference', v_status, v_amount, '{}'::jsonb)
    ON CONFLICT DO NOTHING
    RETURNING acquirer_callbacks.event_id INTO claimed;
    IF claimed IS NULL THEN
        RETURN jsonb_build_object('outcome', 'duplicate', 'response', (
            SELECT c.response FROM acquirer_callbacks c
            WHERE c.event_id = v_event_id OR c.provider_reference = p->>'provider_reference'
            ORDER BY c.received_at LIMIT 1));
    END IF;

    IF p->>'terminal_id' IS NOT NULL THEN
        -- Static QR: the customer typed the amount; the platform creates the transaction.
        SELECT t.id, t.status, t.merchant_id, m.status AS merchant_status INTO terminal
        FROM terminals t JOIN merchants m ON m.id = t.merchant_id WHERE t.id = p->>'terminal_id';
        -- (no new_transaction: the caller found no such terminal a moment ago)
        IF NOT FOUND OR terminal.status <> 'active' OR jsonb_typeof(p->'new_transaction') IS DISTINCT FROM 'object' THEN
            rejection := jsonb_build_object('code', 'unknown_terminal', 'reconciliation_kind', 'unknown_terminal',
                                            'terminal_status', terminal.status);
        ELSIF terminal.merchant_status <> 'active' THEN
            rejection := jsonb_build_object('code', 'merchant_not_active', 'reconciliation_kind', 'merchant_not_active',
                                            'merchant_id', terminal.merchant_id,
                                            'merchant_status', terminal.merchant_status);
        ELSE
            v_txn := payment_create(p->'new_transaction');
        END IF;
    ELSE
        SELECT * INTO v_txn FROM transactions WHERE id = p->>'transaction_id' FOR UPDATE;
        IF NOT FOUND THEN
            rejection := jsonb_build_object('code', 'transaction_not_found', 'reconciliation_kind', 'unknown_transaction');
        ELSIF v_txn.amount <> v_amount THEN
            rejection := jsonb_build_object('code', 'amount_mismatch', 'reconciliation_kind', 'amount_mismatch',
                                            'transaction_id', v_txn.id, 'expected_amount', v_txn.amount);
        ELSIF v_txn.status = 'paid' AND v_status = 'paid' THEN
            -- A second payment for one QR under another reference: money moved twice.
            rejection := jsonb_build_object('code', 'already_paid', 'reconciliation_kind', 'paid_twice',
                                            'transaction_id', v_txn.id, 'expected_amount', v_txn.amount);
        END IF;
    END IF;
    IF rejection IS NULL THEN
        refusal := payment_transition_refusal(v_txn.status, v_status);
        IF refusal IS NOT NULL THEN
            rejection := jsonb_build_object('code', refusal, 'transaction_id', v_txn.id, 'status', v_txn.status);
        END IF;
    END IF;
    IF rejection IS NOT NULL THEN
        DELETE FROM acquirer_callbacks c WHERE c.event_id = v_event_id;
        RETURN rejection || jsonb_build_object('outcome', 'rejected');
    END IF;

    v_txn := payment_transition(v_txn.id, p->'transition');
    IF jsonb_typeof(p->'above_limit') = 'object' THEN
        INSERT INTO reconciliation_exceptions (id, kind, event_id, transaction_id, provider_reference,
                                               expected_amount, received_amount, payload)
        VALUES (p->'above_limit'->>'id', 'amount_above_limit', v_event_id, v_txn.id, p->>'provider_reference',
                (p->'above_limit'->>'max_amount')::bigint, v_amount, p->'above_limit'->'payload')
        ON CONFLICT (kind, event_id) DO NOTHING;
    END IF;
    UPDATE acquirer_callbacks c
    SET transaction_id = v_txn.id,
        response = jsonb_build_object('transaction_id', v_txn.id, 'status', v_txn.status, 'duplicate', false)
    WHERE c.event_id = v_event_id;
    PERFORM record_audit(p->'audit', v_txn.id, v_txn.merchant_id);
    RETURN jsonb_build_object('outcome', 'applied', 'response',
        jsonb_build_object('transaction_id', v_txn.id, 'status', v_txn.status, 'duplicate', false));
END
$$;
