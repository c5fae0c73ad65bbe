-- Refunds: the rules are the functions of sql/migrations/170 (refund_request, refund_decide,
-- refund_complete), each one statement; the rest reads.

-- refund_request --
-- $1 a core.refunds.service.RefundRequest
SELECT * FROM refund_request($1::jsonb);

-- refund_decide --
-- $1 a core.refunds.service.RefundDecision
SELECT * FROM refund_decide($1::jsonb);

-- refund_complete --
-- $1 a core.refunds.service.RefundOutcome
SELECT * FROM refund_complete($1::jsonb);

-- refund_by_id --
-- $1 refund id
SELECT r.*, m.name AS merchant_name, t.reference AS transaction_reference, t.amount AS transaction_amount
FROM refunds r JOIN merchants m ON m.id = r.merchant_id JOIN transactions t ON t.id = r.transaction_id
WHERE r.id = $1;

-- list_refunds --
-- $1 cursor, $2 fetch limit, $3 transaction id or NULL, $4 status or NULL, $5 merchant id or NULL
SELECT r.*, m.name AS merchant_name, t.reference AS transaction_reference, t.amount AS transaction_amount
FROM refunds r JOIN merchants m ON m.id = r.merchant_id JOIN transactions t ON t.id = r.transaction_id
WHERE ($1::text IS NULL OR r.id < $1)
  AND ($3::text IS NULL OR r.transaction_id = $3)
  AND ($4::text IS NULL OR r.status = $4)
  AND ($5::text IS NULL OR r.merchant_id = $5)
ORDER BY r.id DESC
LIMIT $2;

-- partner_refund --
-- $1 partner id, $2 partnerRefundNo: a refund this partner already asked for under that number
SELECT * FROM refunds WHERE partner_id = $1 AND partner_refund_no = $2;

-- refund_acquirer --
-- $1 transaction id: the merchant's acquirer when it speaks SNAP and the platform can call it (its API's
-- base_url, the HMAC secret and the platform's private key for it): its refunds go through it. Else no row
SELECT a.code FROM transactions t
JOIN merchants m ON m.id = t.merchant_id
JOIN acquirers a ON a.code = m.acquirer_code
WHERE t.id = $1 AND a.protocol = 'snap' AND a.settings ? 'base_url'
  AND a.secret_names @> ARRAY['client_secret', 'private_key_pem'];

-- refund_at_acquirer --
-- $1 refund id: a pending refund with what its acquirer call needs
SELECT r.id, r.status, r.amount, r.reason, r.transaction_id, t.provider_reference,
       r.acquirer_code
FROM refunds r
JOIN transactions t ON t.id = r.transaction_id
WHERE r.id = $1 AND r.status = 'pending' AND r.acquirer_code IS NOT NULL;
