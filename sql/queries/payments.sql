-- terminal_for_payment --
-- $1 = terminal id: the terminal with its merchant's state and fee
SELECT t.id, t.outlet_id, t.merchant_id, t.status AS terminal_status, t.terminal_code,
       m.status AS merchant_status, m.fee_bps AS merchant_fee_bps, m.name AS merchant_name,
       m.city AS merchant_city, m.postal_code, m.mcc, m.nmid
FROM terminals t JOIN merchants m ON m.id = t.merchant_id
WHERE t.id = $1;

-- insert_transaction --
-- $1 id, $2 merchant, $3 outlet, $4 terminal, $5 device, $6 kind, $7 status, $8 amount,
-- $9 reference, $10 qr_payload, $11 fee_bps, $12 expires_at
INSERT INTO transactions (id, merchant_id, outlet_id, terminal_id, device_id, kind, status, amount,
                          reference, qr_payload, fee_bps, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
RETURNING *;

-- transaction_by_id --
-- $1 = transaction id
SELECT * FROM transactions WHERE id = $1;

-- transaction_for_update --
-- $1 = transaction id
SELECT * FROM transactions WHERE id = $1 FOR UPDATE;

-- settle_transaction_status --
-- $1 id, $2 new status, $3 paid_at, $4 provider_reference, $5 failure_reason
UPDATE transactions
SET status = $2, paid_at = $3, provider_reference = COALESCE($4, provider_reference),
    failure_reason = $5, updated_at = now()
WHERE id = $1
RETURNING *;

-- insert_transaction_event --
-- $1 id, $2 transaction, $3 event_type, $4 from_status, $5 to_status, $6 source, $7 payload
INSERT INTO transaction_events (id, transaction_id, event_type, from_status, to_status, source, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- transaction_events --
-- $1 = transaction id
SELECT * FROM transaction_events WHERE transaction_id = $1 ORDER BY id;

-- list_transactions --
-- $1 cursor, $2 limit+1, $3 merchant, $4 terminal, $5 status, $6 from, $7 to
SELECT * FROM transactions
WHERE ($1::text IS NULL OR id < $1)
  AND ($3::text IS NULL OR merchant_id = $3)
  AND ($4::text IS NULL OR terminal_id = $4)
  AND ($5::text IS NULL OR status = $5)
  AND ($6::timestamptz IS NULL OR created_at >= $6)
  AND ($7::timestamptz IS NULL OR created_at < $7)
ORDER BY id DESC
LIMIT $2;

-- due_pending_transactions --
-- $1 = limit: pending dynamic QRs past their expiry, oldest first, locked for the sweep
SELECT * FROM transactions
WHERE status = 'pending' AND expires_at <= now()
ORDER BY expires_at
LIMIT $1
FOR UPDATE SKIP LOCKED;

-- insert_ledger_entry --
-- $1 id, $2 transaction, $3 merchant, $4 entry_type, $5 amount
INSERT INTO ledger_entries (id, transaction_id, merchant_id, entry_type, amount)
VALUES ($1, $2, $3, $4, $5);

-- list_ledger_entries --
-- $1 cursor, $2 limit+1, $3 transaction, $4 merchant, $5 entry_type, $6 from, $7 to
SELECT * FROM ledger_entries
WHERE ($1::text IS NULL OR id < $1)
  AND ($3::text IS NULL OR transaction_id = $3)
  AND ($4::text IS NULL OR merchant_id = $4)
  AND ($5::text IS NULL OR entry_type = $5)
  AND ($6::timestamptz IS NULL OR created_at >= $6)
  AND ($7::timestamptz IS NULL OR created_at < $7)
ORDER BY id DESC
LIMIT $2;

-- claim_callback --
-- $1 event_id, $2 provider_reference, $3 status, $4 amount: NULL when either key was seen before
INSERT INTO acquirer_callbacks (event_id, provider_reference, status, amount, response)
VALUES ($1, $2, $3, $4, '{}'::jsonb)
ON CONFLICT DO NOTHING
RETURNING event_id;

-- original_callback --
-- $1 event_id, $2 provider_reference
SELECT * FROM acquirer_callbacks WHERE event_id = $1 OR provider_reference = $2
ORDER BY received_at LIMIT 1;

-- complete_callback --
-- $1 event_id, $2 transaction id, $3 response
UPDATE acquirer_callbacks SET transaction_id = $2, response = $3 WHERE event_id = $1;

-- record_reconciliation_exception --
-- $1 id, $2 kind, $3 event_id, $4 transaction, $5 provider_reference, $6 expected, $7 received, $8 payload
INSERT INTO reconciliation_exceptions (id, kind, event_id, transaction_id, provider_reference,
                                       expected_amount, received_amount, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (kind, event_id) DO NOTHING;

-- soundbox_for_terminal --
-- $1 = terminal id: the active soundbox bound there, its model's capabilities and the merchant's name
SELECT d.id AS device_id, dm.capabilities, m.name AS merchant_name
FROM devices d
JOIN device_models dm ON dm.id = d.model_id
JOIN terminals t ON t.id = d.terminal_id
JOIN merchants m ON m.id = t.merchant_id
WHERE d.terminal_id = $1 AND d.role = 'soundbox' AND d.status = 'active';

-- device_for_dynamic_qr --
-- $1 = device id: its status, terminal and model capabilities
SELECT d.id, d.status, d.terminal_id, dm.capabilities
FROM devices d JOIN device_models dm ON dm.id = d.model_id
WHERE d.id = $1;

-- latest_payment_downlink --
-- $1 = transaction id: its newest announcement row, locked for a retry
SELECT id, message_id, device_id, status FROM device_outbox
WHERE transaction_id = $1 AND kind = 'payment'
ORDER BY id DESC LIMIT 1
FOR UPDATE;

-- wake_downlink --
-- $1 = outbox id: due now (an operator asked for a retry)
UPDATE device_outbox SET next_attempt_at = now() WHERE id = $1;
