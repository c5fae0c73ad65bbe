-- terminal_for_payment --
-- $1 = terminal id: the terminal with its merchant's state
SELECT t.id, t.outlet_id, t.merchant_id, t.status AS terminal_status, t.terminal_code,
       m.status AS merchant_status, m.name AS merchant_name,
       m.city AS merchant_city, m.postal_code, m.mcc, m.nmid,
       coalesce(a.protocol = 'snap' AND a.settings ? 'base_url', false) AS acquirer_issues_qr, a.code AS acquirer_code, a.updated_at AS acquirer_updated_at,
       m.acquirer_merchant_id, coalesce(t.acquirer_terminal_id, t.terminal_code) AS acquirer_terminal_id
FROM terminals t JOIN merchants m ON m.id = t.merchant_id
LEFT JOIN acquirers a ON a.code = m.acquirer_code
WHERE t.id = $1;

-- payment_create --
-- $1 = a core.payments.transactions.NewTransaction: the transaction and its created event (sql/migrations/080)
SELECT * FROM payment_create($1::jsonb);

-- payment_transition --
-- $1 transaction id, $2 a core.payments.transactions.TransitionRequest (sql/migrations/080)
SELECT * FROM payment_transition($1, $2::jsonb);

-- transaction_by_id --
-- $1 = transaction id
SELECT * FROM transactions WHERE id = $1;

-- transaction_for_update --
-- $1 = transaction id
SELECT * FROM transactions WHERE id = $1 FOR UPDATE;

-- transaction_events --
-- $1 = transaction id
SELECT * FROM transaction_events WHERE transaction_id = $1 ORDER BY id;

-- list_transactions --
-- $1 cursor, $2 limit+1, $3 merchant, $4 terminal, $5 status, $6 from, $7 to,
-- $8 search: a reference or an RRN (whole), $9 search: an amount (NULL: the search is not a number).
-- With the merchant's name and the terminal's code and name (transaction_view's columns).
SELECT x.*, m.name AS merchant_name, t.terminal_code, t.name AS terminal_name
FROM transactions x JOIN merchants m ON m.id = x.merchant_id JOIN terminals t ON t.id = x.terminal_id
WHERE ($1::text IS NULL OR x.id < $1)
  AND ($3::text IS NULL OR x.merchant_id = $3)
  AND ($4::text IS NULL OR x.terminal_id = $4)
  AND ($5::text IS NULL OR x.status = $5)
  AND ($6::timestamptz IS NULL OR x.created_at >= $6)
  AND ($7::timestamptz IS NULL OR x.created_at < $7)
  AND ($8::text IS NULL OR x.reference = $8 OR x.provider_reference = $8 OR x.amount = $9::bigint)
ORDER BY x.id DESC
LIMIT $2;

-- transaction_view --
-- $1 = transaction id: the transaction with the names list_transactions gives
SELECT x.*, m.name AS merchant_name, t.terminal_code, t.name AS terminal_name
FROM transactions x JOIN merchants m ON m.id = x.merchant_id JOIN terminals t ON t.id = x.terminal_id
WHERE x.id = $1;

-- due_pending_transactions --
-- $1 = limit: pending dynamic QRs past their expiry, oldest first, locked for the sweep
SELECT * FROM transactions
WHERE status = 'pending' AND expires_at <= now()
ORDER BY expires_at
LIMIT $1
FOR UPDATE SKIP LOCKED;

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

-- record_reconciliation_exception --
-- $1 id, $2 kind, $3 event_id, $4 transaction, $5 provider_reference, $6 expected, $7 received, $8 payload
INSERT INTO reconciliation_exceptions (id, kind, event_id, transaction_id, provider_reference,
                                       expected_amount, received_amount, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (kind, event_id) DO NOTHING;

-- terminal_payment_context --
-- $1 terminal id, or NULL and $2 a transaction id (its terminal): the active
-- soundbox bound there (device_id NULL: none) with its model's capabilities, its configured
-- preferences and the merchant's name (a core.payments.notifications.Soundbox), and its model's wire
-- dialect. Read unlocked before a callback is applied: apply_callback re-checks everything that decides.
SELECT t.id, t.outlet_id, t.merchant_id,
       d.id AS device_id, dm.capabilities, dm.dialect, m.name AS merchant_name, dc.desired AS config
FROM terminals t
JOIN merchants m ON m.id = t.merchant_id
LEFT JOIN devices d ON d.terminal_id = t.id AND d.role = 'soundbox' AND d.status = 'active'
LEFT JOIN device_models dm ON dm.id = d.model_id
LEFT JOIN device_configs dc ON dc.device_id = d.id
WHERE t.id = COALESCE($1, (SELECT terminal_id FROM transactions WHERE id = $2));

-- apply_callback --
-- $1 = a core.payments.callbacks.CallbackApplication (sql/migrations/080): the whole callback, one round trip
SELECT apply_callback($1::jsonb);

-- device_for_dynamic_qr --
-- $1 = device id: its status and model capabilities, and its terminal as terminal_for_payment
-- gives it (id NULL: bound to none), so a device's QR costs one read before its write
SELECT d.status AS device_status, dm.capabilities,
       t.id, t.outlet_id, t.merchant_id, t.status AS terminal_status, t.terminal_code,
       m.status AS merchant_status, m.name AS merchant_name,
       m.city AS merchant_city, m.postal_code, m.mcc, m.nmid,
       coalesce(a.protocol = 'snap' AND a.settings ? 'base_url', false) AS acquirer_issues_qr, a.code AS acquirer_code, a.updated_at AS acquirer_updated_at,
       m.acquirer_merchant_id, coalesce(t.acquirer_terminal_id, t.terminal_code) AS acquirer_terminal_id
FROM devices d
JOIN device_models dm ON dm.id = d.model_id
LEFT JOIN terminals t ON t.id = d.terminal_id
LEFT JOIN merchants m ON m.id = t.merchant_id
LEFT JOIN acquirers a ON a.code = m.acquirer_code
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
