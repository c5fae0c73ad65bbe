-- insert_acquirer --
-- $1 id, $2 code, $3 name, $4 protocol, $5 settings, $6 sealed secrets, $7 secret names
INSERT INTO acquirers (id, code, name, protocol, settings, secrets, secret_names)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING *;

-- acquirer_by_code --
-- $1 code
SELECT * FROM acquirers WHERE code = $1;

-- acquirer_by_code_for_update --
-- $1 code
SELECT * FROM acquirers WHERE code = $1 FOR UPDATE;

-- acquirer_by_client_key --
-- $1 X-CLIENT-KEY / X-PARTNER-ID of a SNAP acquirer
SELECT * FROM acquirers WHERE settings ->> 'client_key' = $1 AND protocol = 'snap';

-- list_acquirers --
-- $1 cursor (id), $2 limit: newest first
SELECT * FROM acquirers WHERE $1::text IS NULL OR id < $1 ORDER BY id DESC LIMIT $2;

-- update_acquirer --
-- $1 code, $2 name, $3 settings, $4 sealed secrets, $5 secret names
UPDATE acquirers SET name = $2, settings = $3, secrets = $4, secret_names = $5, updated_at = now()
WHERE code = $1
RETURNING *;

-- sealed_acquirer_secrets --
SELECT code, secrets FROM acquirers WHERE secrets IS NOT NULL ORDER BY code FOR UPDATE;

-- reseal_acquirer_secrets --
-- $1 code, $2 secrets re-encrypted under the newest key
UPDATE acquirers SET secrets = $2 WHERE code = $1;

-- set_merchant_acquirer --
-- $1 merchant id, $2 acquirer code (NULL: none), $3 acquirer's merchant id
UPDATE merchants SET acquirer_code = $2, acquirer_merchant_id = $3, updated_at = now()
WHERE id = $1
RETURNING id, acquirer_code, acquirer_merchant_id;

-- set_terminal_acquirer_id --
-- $1 terminal id, $2 the acquirer's id for it (NULL: its terminal_code)
UPDATE terminals SET acquirer_terminal_id = $2, updated_at = now()
WHERE id = $1
RETURNING id, coalesce(acquirer_terminal_id, terminal_code) AS acquirer_terminal_id;

-- terminal_by_acquirer_id --
-- $1 acquirer code, $2 the acquirer's terminal id, $3 the acquirer's merchant id (NULL: any).
-- Two rows mean the terminal id alone is ambiguous at this acquirer.
SELECT t.id
FROM terminals t JOIN merchants m ON m.id = t.merchant_id
WHERE m.acquirer_code = $1
  AND coalesce(t.acquirer_terminal_id, t.terminal_code) = $2
  AND ($3::text IS NULL OR m.acquirer_merchant_id = $3)
LIMIT 2;

-- transaction_acquirer --
-- $1 transaction id: the acquirer of its merchant
SELECT m.acquirer_code FROM transactions x JOIN merchants m ON m.id = x.merchant_id WHERE x.id = $1;

-- payment_create_acquired --
-- $1 a core.payments.transactions.NewTransaction, $2 acquirer code, $3 the acquirer's referenceNo:
-- the transaction of a QR the acquirer issued and its acquirer_qrs row, in one statement (one transaction).
WITH created AS (SELECT * FROM payment_create($1::jsonb)),
     issued AS (
         INSERT INTO acquirer_qrs (transaction_id, acquirer_code, acquirer_reference)
         SELECT id, $2, $3 FROM created
     )
SELECT * FROM created;

-- claim_acquirer_qrs_due --
-- $1 limit, $2 milliseconds until the next query of each. Claimed by moving next_query_at, so the
-- rows a node took are not due for any other node until then (several workers share the table):
-- live unpaid QRs to query, and QRs that ended here unpaid (expired, failed) to cancel at the acquirer.
UPDATE acquirer_qrs q
SET next_query_at = now() + make_interval(secs => $2 / 1000.0), queries = q.queries + 1
FROM (
    SELECT q2.transaction_id
    FROM acquirer_qrs q2
    WHERE q2.next_query_at <= now()
    ORDER BY q2.next_query_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
) due, transactions x, acquirers a
WHERE q.transaction_id = due.transaction_id AND x.id = q.transaction_id AND a.code = q.acquirer_code
RETURNING q.transaction_id, q.acquirer_code, q.acquirer_reference, q.queries, x.status, x.amount,
          x.expires_at, a.updated_at AS acquirer_updated_at,
          coalesce(a.settings -> 'status_map', '{}'::jsonb) AS status_map;

-- acquirer_qr_queried --
-- $1 transaction id, $2 the latestTransactionStatus answered
UPDATE acquirer_qrs SET last_status = $2 WHERE transaction_id = $1;

-- acquirer_qr_done --
-- $1 transaction id, $2 true when it was cancelled at the acquirer: nothing left to ask about it.
UPDATE acquirer_qrs
SET next_query_at = NULL, cancelled_at = CASE WHEN $2 THEN now() ELSE cancelled_at END
WHERE transaction_id = $1;

-- acquirer_qr_of_transaction --
-- $1 transaction id
SELECT * FROM acquirer_qrs WHERE transaction_id = $1;
