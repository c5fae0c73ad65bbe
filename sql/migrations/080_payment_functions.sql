-- The payment path in the database: a signed callback is one round trip.
--
-- A callback used to be about twenty statements, each a round trip from the
-- API process (claim, terminal, insert, events, status, three ledger rows,
-- the soundbox, outbox, NOTIFY, completion, audit, BEGIN/COMMIT). These
-- functions do the same effects in one call, with every invariant still the
-- database's (unique claims, the state CHECKs, the append-only triggers, the
-- ledger's unique (transaction, entry_type)). What needs Python (ids, the
-- announcement's wording for the device model, the audit actor) arrives
-- prepared in a jsonb argument; see core/payments/callbacks.py.

-- The platform fee of a gross amount: half up to whole rupiah (IDR has no
-- minor unit). The payable is the rest, so fee + payable = gross, always.
CREATE FUNCTION payment_fee(gross bigint, fee_bps integer) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT (gross * fee_bps + 5000) / 10000
$$;

-- Why a transaction cannot move from one status to another; NULL when it can.
-- ``paid`` is final; an expired or failed one can still become paid (the
-- customer's money moved), nothing else.
CREATE FUNCTION payment_transition_refusal(from_status text, to_status text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE
        WHEN from_status = 'paid' THEN 'transaction_final'
        WHEN to_status <> from_status AND from_status <> 'pending' AND to_status <> 'paid' THEN 'transaction_final'
    END
$$;

-- One downlink queued for a device, and the publisher woken when the
-- transaction commits. p: a core.outbox.NewDownlink.
CREATE FUNCTION enqueue_downlink(p jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO device_outbox (id, message_id, device_id, kind, topic, payload, expires_at, transaction_id)
    SELECT id, message_id, device_id, kind, topic, payload, expires_at, transaction_id
    FROM jsonb_populate_record(NULL::device_outbox, p);
    PERFORM pg_notify('device_outbox', p->>'device_id');
END
$$;

-- One audit row (p: a core.audit.AuditEntry) about the entity a function has just written.
CREATE FUNCTION record_audit(p jsonb, p_entity_id text, p_merchant_id text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO audit_logs (id, actor_type, actor_id, actor_role, action, entity_type, entity_id, merchant_id,
                            request_id, ip, payload)
    SELECT a.id, a.actor_type, a.actor_id, a.actor_role, a.action, a.entity_type, p_entity_id, p_merchant_id,
           a.request_id, a.ip, a.payload
    FROM jsonb_populate_record(NULL::audit_logs, p) AS a
$$;

-- A new pending transaction and its ``created`` event, and p.audit when
-- given (an operator's QR). p: a core.payments.transactions.NewTransaction.
CREATE FUNCTION payment_create(p jsonb) RETURNS transactions LANGUAGE plpgsql AS $$
DECLARE
    created transactions;
BEGIN
    INSERT INTO transactions (id, merchant_id, outlet_id, terminal_id, device_id, kind, status, amount,
                              reference, qr_payload, fee_bps, expires_at)
    SELECT id, merchant_id, outlet_id, terminal_id, device_id, kind, 'pending', amount,
           reference, qr_payload, fee_bps, expires_at
    FROM jsonb_populate_record(NULL::transactions, p)
    RETURNING * INTO created;
    INSERT INTO transaction_events (id, transaction_id, event_type, to_status, source, payload)
    VALUES (p->>'event_id', created.id, 'created', 'pending', p->>'source',
            jsonb_build_object('amount', created.amount, 'kind', created.kind));
    IF jsonb_typeof(p->'audit') = 'object' THEN
        PERFORM record_audit(p->'audit', created.id, created.merchant_id);
    END IF;
    RETURN created;
END
$$;

-- Move a transaction (locked here, if the caller has not) to p.to_status, with
-- its event; becoming paid writes the three ledger rows and queues p.downlink
-- (the announcement, when a soundbox is bound). p: a
-- core.payments.transactions.TransitionRequest. A refused move raises
-- SQLSTATE QS001 with the refusal as the message.
CREATE FUNCTION payment_transition(p_transaction_id text, p jsonb) RETURNS transactions
LANGUAGE plpgsql AS $$
DECLARE
    v_txn transactions;
    updated transactions;
    v_to text := p->>'to_status';
    v_reason text := p->>'reason';
    v_fee bigint;
    refusal text;
BEGIN
    SELECT * INTO v_txn FROM transactions WHERE id = p_transaction_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'transaction % does not exist', p_transaction_id USING ERRCODE = 'no_data_found';
    END IF;
    refusal := payment_transition_refusal(v_txn.status, v_to);
    IF refusal IS NOT NULL THEN
        RAISE EXCEPTION '%', refusal USING ERRCODE = 'QS001', DETAIL = v_txn.status;
    END IF;
    IF v_to = v_txn.status THEN
        RETURN v_txn;
    END IF;
    UPDATE transactions
    SET status = v_to,
        paid_at = CASE WHEN v_to = 'paid' THEN (p->>'paid_at')::timestamptz END,
        provider_reference = COALESCE(p->>'provider_reference', provider_reference),
        failure_reason = CASE WHEN v_to <> 'paid' THEN v_reason END,
        updated_at = now()
    WHERE id = v_txn.id
    RETURNING * INTO updated;
    INSERT INTO transaction_events (id, transaction_id, event_type, from_status, to_status, source, payload)
    VALUES (p->>'event_id', v_txn.id,
            CASE WHEN v_txn.status = 'pending' THEN v_to ELSE 'paid_after_' || v_txn.status END,
            v_txn.status, v_to, p->>'source',
            COALESCE(p->'payload', '{}'::jsonb)
                || CASE WHEN v_reason IS NOT NULL THEN jsonb_build_object('reason', v_reason) ELSE '{}'::jsonb END);
    IF v_to = 'paid' THEN
        v_fee := payment_fee(updated.amount, updated.fee_bps);
        INSERT INTO ledger_entries (id, transaction_id, merchant_id, entry_type, amount)
        VALUES (p->'ledger_ids'->>0, updated.id, updated.merchant_id, 'gross_income', updated.amount),
               (p->'ledger_ids'->>1, updated.id, updated.merchant_id, 'platform_fee', v_fee),
               (p->'ledger_ids'->>2, updated.id, updated.merchant_id, 'merchant_payable', updated.amount - v_fee);
        IF jsonb_typeof(p->'downlink') = 'object' THEN
            PERFORM enqueue_downlink(p->'downlink'
                || jsonb_build_object('payload', p->'downlink'->'payload' || jsonb_build_object('currency', updated.currency)));
        END IF;
    END IF;
    RETURN updated;
END
$$;

-- A signed acquirer notification, applied once (SPEC §4). p: a
-- core.payments.callbacks.CallbackApplication. Answers jsonb:
--   {"outcome": "duplicate", "response": <what the first one answered>}
--   {"outcome": "applied", "response": {"transaction_id", "status", "duplicate": false}}
--   {"outcome": "rejected", "code", "reconciliation_kind", "transaction_id", ...}
-- The claim (unique event_id and provider_reference) comes first, so a
-- concurrent replay waits on it and then answers the original's response. A
-- rejection deletes its claim before anything else is written: the caller
-- records the reconciliation exception and the audit row in a transaction of
-- their own, and a later retry of the same event is judged afresh.
CREATE FUNCTION apply_callback(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
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
    UPDATE acquirer_callbacks c
    SET transaction_id = v_txn.id,
        response = jsonb_build_object('transaction_id', v_txn.id, 'status', v_txn.status, 'duplicate', false)
    WHERE c.event_id = v_event_id;
    PERFORM record_audit(p->'audit', v_txn.id, v_txn.merchant_id);
    RETURN jsonb_build_object('outcome', 'applied', 'response',
        jsonb_build_object('transaction_id', v_txn.id, 'status', v_txn.status, 'duplicate', false));
END
$$;
