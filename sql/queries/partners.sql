-- create_partner --
-- $1 id, $2 name, $3 client key, $4 public key PEM, $5 encrypted secret, $6 notify url
INSERT INTO partners (id, name, client_key, public_key_pem, client_secret_enc, notify_url)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING *;

-- add_partner_merchants --
-- $1 partner id, $2 merchant ids (unknown ones fail the foreign key)
INSERT INTO partner_merchants (partner_id, merchant_id)
SELECT $1, unnest($2::text[])
ON CONFLICT DO NOTHING;

-- set_partner_merchants --
-- $1 partner id, $2 merchant ids: the partner's merchants become exactly these
DELETE FROM partner_merchants WHERE partner_id = $1 AND NOT (merchant_id = ANY($2::text[]));

-- unknown_merchant_ids --
-- $1 merchant ids: those that do not exist
SELECT wanted.id FROM unnest($1::text[]) AS wanted(id)
WHERE NOT EXISTS (SELECT 1 FROM merchants m WHERE m.id = wanted.id);

-- partner_by_id --
-- $1 partner id, with its merchants
SELECT p.*, COALESCE((SELECT array_agg(merchant_id ORDER BY merchant_id) FROM partner_merchants
                      WHERE partner_id = p.id), '{}') AS merchant_ids
FROM partners p WHERE p.id = $1;

-- partner_by_client_key --
-- $1 client key (X-CLIENT-KEY / X-PARTNER-ID)
SELECT * FROM partners WHERE client_key = $1;

-- list_partners --
-- $1 cursor, $2 limit+1
SELECT p.*, COALESCE((SELECT array_agg(merchant_id ORDER BY merchant_id) FROM partner_merchants
                      WHERE partner_id = p.id), '{}') AS merchant_ids
FROM partners p
WHERE ($1::text IS NULL OR p.id < $1)
ORDER BY p.id DESC
LIMIT $2;

-- update_partner --
-- $1 id, $2 name, $3 public key PEM, $4 notify url, $5 status (NULL: unchanged)
UPDATE partners
SET name = COALESCE($2, name),
    public_key_pem = COALESCE($3, public_key_pem),
    notify_url = COALESCE($4, notify_url),
    status = COALESCE($5, status),
    updated_at = now()
WHERE id = $1
RETURNING id;

-- rotate_partner_secret --
-- $1 id, $2 new encrypted secret, $3 overlap in seconds: the current secret stays valid that long
UPDATE partners
SET previous_secret_enc = client_secret_enc,
    previous_secret_until = now() + make_interval(secs => $3),
    client_secret_enc = $2,
    updated_at = now()
WHERE id = $1
RETURNING id, previous_secret_until;

-- partner_terminal --
-- $1 partner id, $2 terminal id: the terminal as terminal_for_payment gives it, only when its
-- merchant is one of the partner's (another's terminal is not found), with the active screen
-- soundbox bound there (screen_device_id NULL: none)
SELECT t.id, t.outlet_id, t.merchant_id, t.status AS terminal_status, t.terminal_code,
       m.status AS merchant_status, m.fee_bps AS merchant_fee_bps, m.name AS merchant_name,
       m.city AS merchant_city, m.postal_code, m.mcc, m.nmid,
       coalesce(a.protocol = 'snap' AND a.settings ? 'base_url', false) AS acquirer_issues_qr, a.code AS acquirer_code, a.updated_at AS acquirer_updated_at,
       m.acquirer_merchant_id, coalesce(t.acquirer_terminal_id, t.terminal_code) AS acquirer_terminal_id,
       (SELECT d.id FROM devices d JOIN device_models dm ON dm.id = d.model_id
        WHERE d.terminal_id = t.id AND d.status = 'active'
          AND (dm.capabilities->>'screen')::boolean AND (dm.capabilities->>'dynamic_qr')::boolean
        ORDER BY d.id LIMIT 1) AS screen_device_id
FROM terminals t
JOIN merchants m ON m.id = t.merchant_id
JOIN partner_merchants pm ON pm.merchant_id = t.merchant_id AND pm.partner_id = $1
LEFT JOIN acquirers a ON a.code = m.acquirer_code
WHERE t.id = $2;

-- record_partner_qr --
-- $1 transaction id, $2 partner id, $3 partnerReferenceNo. No row: the partner already used it.
INSERT INTO partner_qrs (transaction_id, partner_id, partner_reference_no)
VALUES ($1, $2, $3)
ON CONFLICT (partner_id, partner_reference_no) DO NOTHING
RETURNING transaction_id;

-- partner_qr --
-- $1 partner id, $2 referenceNo (transaction id) or NULL, $3 partnerReferenceNo or NULL: the
-- partner's own QR with its transaction, locked (cancel and refund change it)
SELECT q.partner_reference_no, q.cancelled_at, t.*
FROM partner_qrs q JOIN transactions t ON t.id = q.transaction_id
WHERE q.partner_id = $1
  AND ($2::text IS NULL OR q.transaction_id = $2)
  AND ($3::text IS NULL OR q.partner_reference_no = $3)
FOR UPDATE OF t;

-- cancel_partner_qr --
-- $1 transaction id
UPDATE partner_qrs SET cancelled_at = now() WHERE transaction_id = $1 AND cancelled_at IS NULL
RETURNING cancelled_at;

-- claim_partner_notifications --
-- $1 batch size, $2 lease in seconds: the first undelivered notification of each transaction
-- that is due (one in flight per transaction keeps them in order), leased to this worker
WITH due AS (
    SELECT o.id FROM partner_outbox o
    WHERE o.status = 'pending' AND o.next_attempt_at <= now()
      AND NOT EXISTS (SELECT 1 FROM partner_outbox e
                      WHERE e.transaction_id = o.transaction_id AND e.status = 'pending' AND e.id < o.id)
    ORDER BY o.next_attempt_at
    LIMIT $1
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE partner_outbox o
SET next_attempt_at = now() + make_interval(secs => $2), attempts = o.attempts + 1
FROM due, partners p
WHERE o.id = due.id AND p.id = o.partner_id
RETURNING o.id, o.partner_id, o.transaction_id, o.body, o.attempts, p.notify_url, p.client_key;

-- record_partner_delivery --
-- $1 outbox id, $2 outcome (delivered | retry | dead), $3 seconds until the next attempt,
-- $4 error, $5 http status, $6 responseCode, $7 latency ms, $8 attempt
WITH changed AS (
    UPDATE partner_outbox
    SET status = CASE $2 WHEN 'retry' THEN 'pending' ELSE $2 END,
        next_attempt_at = now() + make_interval(secs => $3),
        last_error = $4,
        delivered_at = CASE WHEN $2 = 'delivered' THEN now() END
    WHERE id = $1 AND status = 'pending'
    RETURNING id, partner_id
)
INSERT INTO partner_deliveries (outbox_id, partner_id, attempt, http_status, response_code, outcome, error, latency_ms)
SELECT id, partner_id, $8, $5, $6, $2, $4, $7 FROM changed;

-- resend_partner_notification --
-- $1 partner id, $2 outbox id: due again now, tries counted afresh
UPDATE partner_outbox
SET status = 'pending', next_attempt_at = now(), attempts = 0, delivered_at = NULL
WHERE id = $2 AND partner_id = $1
RETURNING id;

-- partner_notifications --
-- $1 partner id, $2 limit: its newest notifications
SELECT id, transaction_id, event_id, status, attempts, next_attempt_at, last_error, created_at, delivered_at, body
FROM partner_outbox
WHERE partner_id = $1
ORDER BY id DESC
LIMIT $2;

-- notify_partner_outbox --
-- $1 partner id: wake the notifier on commit
SELECT pg_notify('partner_outbox', $1);

-- partner_delivery_log --
-- $1 partner id, $2 limit
SELECT id, outbox_id, attempt, http_status, response_code, outcome, error, latency_ms, attempted_at
FROM partner_deliveries WHERE partner_id = $1 ORDER BY id DESC LIMIT $2;

-- sealed_partner_secrets --
-- Every partner's sealed secrets, locked while they are re-encrypted
SELECT id, client_secret_enc, previous_secret_enc FROM partners ORDER BY id FOR UPDATE;

-- reseal_partner_secrets --
-- $1 id, $2 current secret and $3 previous one (NULL: none) re-encrypted under the newest key
UPDATE partners SET client_secret_enc = $2, previous_secret_enc = $3 WHERE id = $1;
