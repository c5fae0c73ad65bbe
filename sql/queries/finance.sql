-- Finance: settlement batches, their entries/adjustments/events, CSV reports,
-- async export jobs, reconciliation and the dashboards.

-- finance_merchant --
-- $1 = merchant id
SELECT id, code, name, legal_name, email, status FROM merchants WHERE id = $1;

-- finance_now --
-- The database's clock: one cut-off for every merchant of a batch run, on the clock the ledger uses
SELECT now();

-- merchants_with_unbatched_payables --
-- $1 cutoff, $2 merchant id or NULL: merchants that have something to settle (a refund's payable counts:
-- it is a negative line of the next batch)
SELECT DISTINCT le.merchant_id FROM ledger_entries le
WHERE le.entry_type IN ('merchant_payable', 'refund_payable') AND le.created_at <= $1
  AND ($2::text IS NULL OR le.merchant_id = $2)
  AND NOT EXISTS (SELECT 1 FROM settlement_batch_entries e WHERE e.ledger_entry_id = le.id AND e.live)
ORDER BY le.merchant_id;

-- settlement_batch_preview --
-- $1 cutoff, $2 merchant id or NULL: per merchant, what a batch made now would hold, and whether a payout
-- account exists to pay it (the batch is made either way; marking it paid needs the account). Reads only.
SELECT p.merchant_id, m.name AS merchant_name, m.code AS merchant_code, count(*)::int AS entry_count,
       sum(g.amount)::bigint AS gross_amount, sum(f.amount)::bigint AS fee_amount, sum(p.amount)::bigint AS payable_amount,
       EXISTS (SELECT 1 FROM merchant_payout_accounts a WHERE a.merchant_id = p.merchant_id) AS has_payout_account
FROM ledger_entries p
JOIN ledger_entries g ON g.transaction_id = p.transaction_id AND g.entry_type = 'gross_income'
JOIN ledger_entries f ON f.transaction_id = p.transaction_id AND f.entry_type = 'platform_fee'
JOIN merchants m ON m.id = p.merchant_id
WHERE p.entry_type = 'merchant_payable' AND p.created_at <= $1
  AND ($2::text IS NULL OR p.merchant_id = $2)
  AND NOT EXISTS (SELECT 1 FROM settlement_batch_entries e WHERE e.ledger_entry_id = p.id AND e.live)
GROUP BY p.merchant_id, m.name, m.code
ORDER BY m.name, p.merchant_id;

-- lock_merchant_settlement --
-- $1 = merchant id: serialises batch building for one merchant until the transaction ends
SELECT pg_advisory_xact_lock(hashtextextended('settlement:' || $1, 0));

-- unbatched_payables_for_merchant --
-- $1 merchant, $2 cutoff: its merchant_payable entries in no live batch, with their transaction's gross and fee,
-- and its refund_payable entries in no live batch as negative lines (minus the refund's gross, fee and payable)
SELECT p.id AS ledger_entry_id, p.transaction_id, g.amount AS gross_amount, f.amount AS fee_amount,
       p.amount AS payable_amount
FROM ledger_entries p
JOIN ledger_entries g ON g.transaction_id = p.transaction_id AND g.entry_type = 'gross_income'
JOIN ledger_entries f ON f.transaction_id = p.transaction_id AND f.entry_type = 'platform_fee'
WHERE p.merchant_id = $1 AND p.entry_type = 'merchant_payable' AND p.created_at <= $2
  AND NOT EXISTS (SELECT 1 FROM settlement_batch_entries e WHERE e.ledger_entry_id = p.id AND e.live)
UNION ALL
SELECT p.id, p.transaction_id, -g.amount, -f.amount, -p.amount
FROM ledger_entries p
JOIN ledger_entries g ON g.refund_id = p.refund_id AND g.entry_type = 'refund_gross'
JOIN ledger_entries f ON f.refund_id = p.refund_id AND f.entry_type = 'refund_fee'
WHERE p.merchant_id = $1 AND p.entry_type = 'refund_payable' AND p.created_at <= $2
  AND NOT EXISTS (SELECT 1 FROM settlement_batch_entries e WHERE e.ledger_entry_id = p.id AND e.live)
ORDER BY ledger_entry_id;

-- settlement_holds --
-- Merchants whose unbatched lines add up below zero (refunds outweigh what they are owed): held, no batch
SELECT le.merchant_id, m.name AS merchant_name, count(*)::integer AS line_count,
       sum(CASE WHEN le.entry_type = 'merchant_payable' THEN le.amount ELSE -le.amount END)::bigint AS payable_amount
FROM ledger_entries le JOIN merchants m ON m.id = le.merchant_id
WHERE le.entry_type IN ('merchant_payable', 'refund_payable')
  AND NOT EXISTS (SELECT 1 FROM settlement_batch_entries e WHERE e.ledger_entry_id = le.id AND e.live)
GROUP BY le.merchant_id, m.name
HAVING sum(CASE WHEN le.entry_type = 'merchant_payable' THEN le.amount ELSE -le.amount END) < 0
ORDER BY le.merchant_id;

-- reprocessable_entries --
-- $1 = released batch: its entries that no live batch holds now
SELECT e.ledger_entry_id, e.transaction_id, e.gross_amount, e.fee_amount, e.payable_amount
FROM settlement_batch_entries e
WHERE e.batch_id = $1
  AND NOT EXISTS (SELECT 1 FROM settlement_batch_entries x WHERE x.ledger_entry_id = e.ledger_entry_id AND x.live)
ORDER BY e.ledger_entry_id;

-- insert_settlement_batch --
-- $1 id, $2 merchant, $3 cutoff, $4 entry_count, $5 gross, $6 fee, $7 payable, $8 adjustment,
-- $9 created_by, $10 reprocessed_from, $11 value_date
-- The batch pays the merchant's payout account in force now (the caller holds the merchant's settlement lock,
-- which an account change takes too).
INSERT INTO settlement_batches (id, merchant_id, cutoff, entry_count, gross_amount, fee_amount, payable_amount,
                                adjustment_amount, created_by, reprocessed_from_batch_id, payout_account_id,
                                value_date)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
        (SELECT a.id FROM merchant_payout_accounts a WHERE a.merchant_id = $2 ORDER BY a.seq DESC LIMIT 1), $11)
RETURNING *;

-- insert_settlement_batch_entries --
-- $1 batch, $2 merchant, $3 ledger entry ids, $4 transaction ids, $5 gross, $6 fee, $7 payable (arrays)
INSERT INTO settlement_batch_entries (batch_id, ledger_entry_id, transaction_id, merchant_id,
                                      gross_amount, fee_amount, payable_amount)
SELECT $1, u.ledger_entry_id, u.transaction_id, $2, u.gross, u.fee, u.payable
FROM unnest($3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[])
     AS u (ledger_entry_id, transaction_id, gross, fee, payable);

-- release_settlement_batch_entries --
-- $1 = batch: a failed or cancelled batch gives its entries back
UPDATE settlement_batch_entries SET live = false, released_at = now() WHERE batch_id = $1 AND live;

-- settlement_batch_by_id --
-- $1 = batch id
SELECT * FROM settlement_batches WHERE id = $1;

-- settlement_batch_for_update --
-- $1 = batch id
SELECT * FROM settlement_batches WHERE id = $1 FOR UPDATE;

-- list_settlement_batches --
-- $1 cursor, $2 limit+1, $3 merchant, $4 status, $5 from, $6 to (created_at); with the merchant's name
SELECT b.*, m.name AS merchant_name
FROM settlement_batches b JOIN merchants m ON m.id = b.merchant_id
WHERE ($1::text IS NULL OR b.id < $1)
  AND ($3::text IS NULL OR b.merchant_id = $3)
  AND ($4::text IS NULL OR b.status = $4)
  AND ($5::timestamptz IS NULL OR b.created_at >= $5)
  AND ($6::timestamptz IS NULL OR b.created_at < $6)
ORDER BY b.id DESC
LIMIT $2;

-- mark_settlement_batch_paid --
-- $1 batch, $2 payout_reference, $3 note
UPDATE settlement_batches
SET status = 'paid', payout_reference = $2, note = COALESCE($3, note), paid_at = now(), updated_at = now()
WHERE id = $1
RETURNING *;

-- mark_settlement_batch_failed --
-- $1 batch, $2 reason
UPDATE settlement_batches SET status = 'failed', failure_reason = $2, failed_at = now(), updated_at = now()
WHERE id = $1
RETURNING *;

-- mark_settlement_batch_cancelled --
-- $1 batch, $2 reason
UPDATE settlement_batches SET status = 'cancelled', cancellation_reason = $2, cancelled_at = now(), updated_at = now()
WHERE id = $1
RETURNING *;

-- set_settlement_batch_reprocessed_into --
-- $1 old batch, $2 new batch
UPDATE settlement_batches SET reprocessed_into_batch_id = $2, updated_at = now() WHERE id = $1
RETURNING *;

-- update_settlement_batch_reference --
-- $1 batch, $2 payout_reference
UPDATE settlement_batches SET payout_reference = $2, updated_at = now() WHERE id = $1
RETURNING *;

-- add_settlement_batch_adjustment_amount --
-- $1 batch, $2 signed amount
UPDATE settlement_batches SET adjustment_amount = adjustment_amount + $2, updated_at = now() WHERE id = $1
RETURNING *;

-- insert_settlement_batch_event --
-- $1 id, $2 batch, $3 event_type, $4 from_status, $5 to_status, $6 actor_type, $7 actor_id, $8 payload
INSERT INTO settlement_batch_events (id, batch_id, event_type, from_status, to_status, actor_type, actor_id, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- settlement_batch_events --
-- $1 = batch id
SELECT * FROM settlement_batch_events WHERE batch_id = $1 ORDER BY id;

-- settlement_batch_entries --
-- $1 = batch id: its entries with their transaction, oldest first
SELECT e.ledger_entry_id, e.transaction_id, e.gross_amount, e.fee_amount, e.payable_amount, e.live,
       e.released_at, t.paid_at, t.provider_reference, t.reference, t.terminal_id
FROM settlement_batch_entries e JOIN transactions t ON t.id = e.transaction_id
WHERE e.batch_id = $1
ORDER BY e.ledger_entry_id;

-- insert_settlement_adjustment --
-- $1 id, $2 batch, $3 merchant, $4 type, $5 amount, $6 reason, $7 carried_from, $8 actor_type, $9 actor_id
INSERT INTO settlement_batch_adjustments (id, batch_id, merchant_id, adjustment_type, amount, reason,
                                          carried_from_adjustment_id, actor_type, actor_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING *;

-- settlement_batch_adjustments --
-- $1 = batch id
SELECT a.*, b.status AS batch_status FROM settlement_batch_adjustments a
JOIN settlement_batches b ON b.id = a.batch_id
WHERE a.batch_id = $1 ORDER BY a.id;

-- list_settlement_adjustments --
-- $1 cursor, $2 limit+1, $3 merchant, $4 adjustment_type, $5 from, $6 to (created_at)
SELECT a.*, b.status AS batch_status FROM settlement_batch_adjustments a
JOIN settlement_batches b ON b.id = a.batch_id
WHERE ($1::text IS NULL OR a.id < $1)
  AND ($3::text IS NULL OR a.merchant_id = $3)
  AND ($4::text IS NULL OR a.adjustment_type = $4)
  AND ($5::timestamptz IS NULL OR a.created_at >= $5)
  AND ($6::timestamptz IS NULL OR a.created_at < $6)
ORDER BY a.id DESC
LIMIT $2;

-- count_settlement_adjustments --
-- $1 merchant, $2 adjustment_type, $3 from, $4 to
SELECT count(*) FROM settlement_batch_adjustments a
WHERE ($1::text IS NULL OR a.merchant_id = $1)
  AND ($2::text IS NULL OR a.adjustment_type = $2)
  AND ($3::timestamptz IS NULL OR a.created_at >= $3)
  AND ($4::timestamptz IS NULL OR a.created_at < $4);

-- settlement_adjustments_for_export --
-- $1 merchant, $2 adjustment_type, $3 from, $4 to, $5 row cap: oldest first, for a server-side cursor
SELECT a.id, a.created_at, a.batch_id, b.status AS batch_status, b.value_date AS batch_value_date, a.merchant_id, m.name AS merchant_name,
       a.adjustment_type, a.amount, a.reason, a.actor_type, a.actor_id, a.carried_from_adjustment_id
FROM settlement_batch_adjustments a
JOIN settlement_batches b ON b.id = a.batch_id
JOIN merchants m ON m.id = a.merchant_id
WHERE ($1::text IS NULL OR a.merchant_id = $1)
  AND ($2::text IS NULL OR a.adjustment_type = $2)
  AND ($3::timestamptz IS NULL OR a.created_at >= $3)
  AND ($4::timestamptz IS NULL OR a.created_at < $4)
ORDER BY a.id
LIMIT $5;

-- settlement_batch_bank_details --
-- $1 = batch id: the batch with the payout account it was created with (NULL columns: none was set)
SELECT b.*, m.code AS merchant_code, m.name AS merchant_name, m.email AS merchant_email,
       a.bank_code, a.account_number, a.account_name
FROM settlement_batches b
JOIN merchants m ON m.id = b.merchant_id
LEFT JOIN merchant_payout_accounts a ON a.id = b.payout_account_id
WHERE b.id = $1;

-- payout_banks --
-- Every bank the platform knows, by code
SELECT * FROM payout_banks ORDER BY code;

-- payout_bank_by_code --
-- $1 = bank code
SELECT * FROM payout_banks WHERE code = $1;

-- upsert_payout_bank --
-- $1 code, $2 name, $3 digits min, $4 digits max, $5 active
INSERT INTO payout_banks (code, name, account_digits_min, account_digits_max, active)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (code) DO UPDATE
SET name = EXCLUDED.name, account_digits_min = EXCLUDED.account_digits_min,
    account_digits_max = EXCLUDED.account_digits_max, active = EXCLUDED.active, updated_at = now()
RETURNING *;

-- payout_account_history --
-- $1 = merchant id: its payout accounts, newest (the one in force) first, with the bank's name
SELECT a.*, k.name AS bank_name FROM merchant_payout_accounts a JOIN payout_banks k ON k.code = a.bank_code
WHERE a.merchant_id = $1
ORDER BY a.seq DESC;

-- current_payout_account --
-- $1 = merchant id: the account in force, with the bank's name
SELECT a.*, k.name AS bank_name FROM merchant_payout_accounts a JOIN payout_banks k ON k.code = a.bank_code
WHERE a.merchant_id = $1
ORDER BY a.seq DESC  -- a database sequence, not the id (wall-clock time of some API node)
LIMIT 1;

-- payout_account_by_id --
-- $1 = payout account id, with the bank's name
SELECT a.*, k.name AS bank_name FROM merchant_payout_accounts a JOIN payout_banks k ON k.code = a.bank_code
WHERE a.id = $1;

-- insert_payout_account --
-- $1 id, $2 merchant, $3 bank code, $4 account number, $5 account name, $6 created_by_type, $7 created_by
WITH inserted AS (
    INSERT INTO merchant_payout_accounts (id, merchant_id, bank_code, account_number, account_name,
                                          created_by_type, created_by)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    RETURNING *
)
SELECT i.*, k.name AS bank_name FROM inserted i JOIN payout_banks k ON k.code = i.bank_code;

-- pending_settlement_batch_ids --
-- $1 = merchant id: its pending batches (an account change would redirect them)
SELECT id FROM settlement_batches WHERE merchant_id = $1 AND status = 'pending' ORDER BY id;

-- insert_export_job --
-- $1 id, $2 export_type, $3 filters, $4 requested_by_type, $5 requested_by_id
INSERT INTO export_jobs (id, export_type, filters, requested_by_type, requested_by_id)
VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- export_job_by_id --
-- $1 = job id
SELECT * FROM export_jobs WHERE id = $1;

-- reclaim_stale_export_jobs --
-- $1 stale after ms, $2 max attempts: running jobs whose worker went silent go back to pending (or fail)
UPDATE export_jobs
SET status = CASE WHEN attempts >= $2 THEN 'failed' ELSE 'pending' END,
    error_code = CASE WHEN attempts >= $2 THEN 'export_worker_lost' ELSE error_code END,
    error_message = CASE WHEN attempts >= $2 THEN 'the export worker stopped responding too many times'
                         ELSE error_message END,
    completed_at = CASE WHEN attempts >= $2 THEN now() ELSE completed_at END,
    worker_id = NULL
WHERE status = 'running' AND heartbeat_at < now() - make_interval(secs => $1::float8 / 1000)
RETURNING id, status;

-- claim_export_jobs --
-- $1 limit, $2 worker id: oldest pending first; a second worker skips what this one took
UPDATE export_jobs
SET status = 'running', worker_id = $2, attempts = attempts + 1, started_at = now(), heartbeat_at = now()
WHERE id IN (SELECT id FROM export_jobs WHERE status = 'pending' ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING *;

-- heartbeat_export_job --
-- $1 job, $2 worker: NULL when the job was taken back from this worker
UPDATE export_jobs SET heartbeat_at = now() WHERE id = $1 AND worker_id = $2 AND status = 'running'
RETURNING id;

-- complete_export_job --
-- $1 job, $2 worker, $3 row_count, $4 byte_size, $5 file_name, $6 retention days
UPDATE export_jobs
SET status = 'completed', row_count = $3, byte_size = $4, file_name = $5, completed_at = now(),
    heartbeat_at = now(), expires_at = now() + make_interval(days => $6)
WHERE id = $1 AND worker_id = $2 AND status = 'running'
RETURNING *;

-- fail_export_job --
-- $1 job, $2 worker, $3 error_code, $4 error_message, $5 row_count
UPDATE export_jobs
SET status = 'failed', error_code = $3, error_message = $4, row_count = $5, completed_at = now()
WHERE id = $1 AND worker_id = $2 AND status = 'running'
RETURNING *;

-- due_expired_export_jobs --
-- $1 limit: completed exports past their retention, locked for the cleaner
SELECT id, file_name FROM export_jobs
WHERE status = 'completed' AND expires_at <= now()
ORDER BY expires_at
LIMIT $1
FOR UPDATE SKIP LOCKED;

-- mark_export_job_expired --
-- $1 = job id
UPDATE export_jobs SET status = 'expired', expired_at = now(), file_name = NULL WHERE id = $1;

-- export_job_counts --
SELECT status, count(*) AS count FROM export_jobs GROUP BY status ORDER BY status;

-- export_queue_state --
-- $1 stale after ms
SELECT min(created_at) FILTER (WHERE status = 'pending') AS oldest_pending_at,
       count(*) FILTER (WHERE status = 'running'
                          AND heartbeat_at < now() - make_interval(secs => $1::float8 / 1000)) AS stale_running,
       max(completed_at) FILTER (WHERE status = 'completed') AS last_completed_at
FROM export_jobs;

-- settlement_totals_by_status --
-- $1 merchant or NULL
SELECT status, count(*) AS batch_count, COALESCE(sum(entry_count), 0)::bigint AS entry_count,
       COALESCE(sum(gross_amount), 0)::bigint AS gross_amount, COALESCE(sum(fee_amount), 0)::bigint AS fee_amount,
       COALESCE(sum(payable_amount), 0)::bigint AS payable_amount,
       COALESCE(sum(adjustment_amount), 0)::bigint AS adjustment_amount,
       COALESCE(sum(adjusted_payable_amount), 0)::bigint AS adjusted_payable_amount
FROM settlement_batches
WHERE ($1::text IS NULL OR merchant_id = $1)
GROUP BY status;

-- unbatched_payable_totals --
-- $1 merchant or NULL
SELECT count(*) AS entry_count, COALESCE(sum(le.amount), 0)::bigint AS amount FROM ledger_entries le
WHERE le.entry_type = 'merchant_payable' AND ($1::text IS NULL OR le.merchant_id = $1)
  AND NOT EXISTS (SELECT 1 FROM settlement_batch_entries e WHERE e.ledger_entry_id = le.id AND e.live);

-- platform_fee_total --
SELECT COALESCE(sum(amount), 0)::bigint FROM ledger_entries WHERE entry_type = 'platform_fee';

-- latest_settlement_batches --
-- $1 merchant or NULL, $2 limit; with the merchant's name
SELECT b.*, m.name AS merchant_name
FROM settlement_batches b JOIN merchants m ON m.id = b.merchant_id
WHERE ($1::text IS NULL OR b.merchant_id = $1) ORDER BY b.id DESC LIMIT $2;

-- transactions_in_window --
-- $1 from, $2 to, $3 merchant or NULL: created in the window, and paid in the window
SELECT count(*) FILTER (WHERE created_at >= $1 AND created_at < $2) AS created_count,
       count(*) FILTER (WHERE status = 'paid' AND paid_at >= $1 AND paid_at < $2) AS paid_count,
       COALESCE(sum(amount) FILTER (WHERE status = 'paid' AND paid_at >= $1 AND paid_at < $2), 0)::bigint
           AS paid_volume
FROM transactions
WHERE ($3::text IS NULL OR merchant_id = $3)
  AND ((created_at >= $1 AND created_at < $2) OR (paid_at >= $1 AND paid_at < $2));

-- runtime_instances_overview --
-- alive: its last heartbeat has not run out (each process says for how long: core/runtime.py)
SELECT id, hostname, pid, roles, started_at, last_seen_at, alive_until > now() AS alive
FROM runtime_instances ORDER BY started_at;

-- reconcile_settlement_batches --
-- $1 cursor, $2 limit+1, $3 merchant, $4 status, $5 from, $6 to (created_at):
-- each batch beside the ledger rows it points at and its adjustment rows
SELECT b.*, ent.ledger_entry_count, ent.live_entry_count, ent.ledger_gross_amount, ent.ledger_fee_amount,
       ent.ledger_payable_amount, adj.adjustment_rows_amount, adj.adjustment_count, dup.duplicate_reference_count
FROM settlement_batches b
CROSS JOIN LATERAL (
    SELECT count(*) AS ledger_entry_count, count(*) FILTER (WHERE e.live) AS live_entry_count,
           COALESCE(sum(g.amount), 0)::bigint AS ledger_gross_amount,
           COALESCE(sum(f.amount), 0)::bigint AS ledger_fee_amount,
           COALESCE(sum(p.amount), 0)::bigint AS ledger_payable_amount
    FROM settlement_batch_entries e
    JOIN ledger_entries p ON p.id = e.ledger_entry_id
    LEFT JOIN ledger_entries g ON g.transaction_id = e.transaction_id AND g.entry_type = 'gross_income'
    LEFT JOIN ledger_entries f ON f.transaction_id = e.transaction_id AND f.entry_type = 'platform_fee'
    WHERE e.batch_id = b.id
) ent
CROSS JOIN LATERAL (
    SELECT COALESCE(sum(a.amount), 0)::bigint AS adjustment_rows_amount, count(*) AS adjustment_count
    FROM settlement_batch_adjustments a WHERE a.batch_id = b.id
) adj
CROSS JOIN LATERAL (
    SELECT count(*) AS duplicate_reference_count FROM settlement_batches o
    WHERE b.payout_reference IS NOT NULL AND o.payout_reference = b.payout_reference
      AND o.id <> b.id AND o.status = 'paid'
) dup
WHERE ($1::text IS NULL OR b.id < $1)
  AND ($3::text IS NULL OR b.merchant_id = $3)
  AND ($4::text IS NULL OR b.status = $4)
  AND ($5::timestamptz IS NULL OR b.created_at >= $5)
  AND ($6::timestamptz IS NULL OR b.created_at < $6)
ORDER BY b.id DESC
LIMIT $2;

-- list_reconciliation_exceptions --
-- $1 merchant or NULL, $2 from, $3 to, $4 limit: callbacks finance must look at, newest first
SELECT x.*, t.merchant_id FROM reconciliation_exceptions x
LEFT JOIN transactions t ON t.id = x.transaction_id
WHERE ($1::text IS NULL OR t.merchant_id = $1)
  AND ($2::timestamptz IS NULL OR x.created_at >= $2)
  AND ($3::timestamptz IS NULL OR x.created_at < $3)
ORDER BY x.id DESC
LIMIT $4;

-- count_reconciliation_exceptions_by_kind --
-- $1 merchant or NULL, $2 from, $3 to
SELECT x.kind, count(*) AS count FROM reconciliation_exceptions x
LEFT JOIN transactions t ON t.id = x.transaction_id
WHERE ($1::text IS NULL OR t.merchant_id = $1)
  AND ($2::timestamptz IS NULL OR x.created_at >= $2)
  AND ($3::timestamptz IS NULL OR x.created_at < $3)
GROUP BY x.kind ORDER BY x.kind;

-- create_acquirer_report_stage --
-- One import's parsed lines, COPYed in; dropped when the import's transaction ends
CREATE TEMP TABLE acquirer_report_stage (
    line_number integer NOT NULL,
    provider_reference text NOT NULL,
    amount bigint NOT NULL,
    fee bigint,
    settlement_date date NOT NULL,
    terminal_id text,
    merchant_nmid text
) ON COMMIT DROP;

-- analyze_acquirer_report_stage --
-- Statistics for the planner before the matching joins (a temp table has none)
ANALYZE acquirer_report_stage;

-- acquirer_report_stage_work_mem --
-- The import's hash joins and aggregates over a million lines fit in memory instead of spilling
SET LOCAL work_mem = '64MB';

-- acquirer_report_stage_duplicate --
-- The provider_reference that first appears twice in the report (a hash aggregate: no sort of every line)
SELECT provider_reference FROM acquirer_report_stage
GROUP BY provider_reference
HAVING count(*) > 1
ORDER BY min(line_number)
LIMIT 1;

-- acquirer_report_stage_lines --
-- $1 = provider_reference: its first lines in the report
SELECT (array_agg(line_number ORDER BY line_number))[1:5] FROM acquirer_report_stage WHERE provider_reference = $1;

-- lock_acquirer_report_content --
-- $1 = content sha256: two imports of one file queue here; the second then finds the first
SELECT pg_advisory_xact_lock(hashtextextended('acquirer_report:' || $1, 0));

-- acquirer_report_id_by_hash --
-- $1 = content sha256
SELECT id FROM acquirer_reports WHERE content_sha256 = $1;

-- insert_acquirer_report --
-- $1 id, $2 sha256, $3 file name, $4 bytes, $5 lines, $6 dates (date[]), $7 amount, $8 fee, $9 lag days,
-- $10 imported_by_type, $11 imported_by
INSERT INTO acquirer_reports (id, content_sha256, file_name, byte_size, line_count, settlement_date_from,
                              settlement_date_to, settlement_dates, report_amount, report_fee, settlement_lag_days,
                              imported_by_type, imported_by)
SELECT $1, $2, $3, $4, $5, min(d), max(d), $6::date[], $7, $8, $9, $10, $11 FROM unnest($6::date[]) d;

-- insert_acquirer_report_line_exceptions --
-- $1 = report: lines whose reference has no paid transaction (missing_in_ledger) or another amount
INSERT INTO acquirer_report_exceptions (report_id, kind, line_number, provider_reference, settlement_date,
                                        report_amount, report_fee, ledger_amount, terminal_id, merchant_nmid,
                                        transaction_id, merchant_id, ledger_status, paid_at)
SELECT $1, CASE WHEN t.id IS NULL OR t.status <> 'paid' THEN 'missing_in_ledger' ELSE 'amount_mismatch' END,
       s.line_number, s.provider_reference, s.settlement_date, s.amount, s.fee, t.amount, s.terminal_id,
       s.merchant_nmid, t.id, t.merchant_id, t.status, t.paid_at
FROM acquirer_report_stage s
LEFT JOIN transactions t ON t.provider_reference = s.provider_reference
WHERE t.id IS NULL OR t.status <> 'paid' OR t.amount <> s.amount
ORDER BY s.line_number;

-- insert_acquirer_report_missing_exceptions --
-- $1 report, $2 settlement dates (date[]), $3 lag days, $4 / $5 paid_at bounds (the dates' business days):
-- paid transactions the report should have settled and does not list
INSERT INTO acquirer_report_exceptions (report_id, kind, provider_reference, settlement_date, ledger_amount,
                                        transaction_id, merchant_id, ledger_status, paid_at)
SELECT $1, 'missing_in_report', t.provider_reference, (t.paid_at AT TIME ZONE 'Asia/Jakarta')::date + $3::integer,
       t.amount, t.id, t.merchant_id, t.status, t.paid_at
FROM transactions t
WHERE t.status = 'paid' AND t.paid_at >= $4 AND t.paid_at < $5
  AND (t.paid_at AT TIME ZONE 'Asia/Jakarta')::date + $3::integer = ANY ($2::date[])
  AND NOT EXISTS (SELECT 1 FROM acquirer_report_stage s WHERE s.provider_reference = t.provider_reference)
ORDER BY t.paid_at, t.id;

-- acquirer_report_exception_totals --
-- $1 = report: count and amounts by kind
SELECT kind, count(*) AS count, COALESCE(sum(report_amount), 0)::bigint AS report_amount,
       COALESCE(sum(ledger_amount), 0)::bigint AS ledger_amount
FROM acquirer_report_exceptions WHERE report_id = $1 GROUP BY kind;

-- set_acquirer_report_totals --
-- $1 report, $2 matched count, $3 matched amount, $4 / $5 / $6 amount_mismatch count, report and ledger amount,
-- $7 / $8 missing_in_ledger count and amount, $9 / $10 missing_in_report count and amount
UPDATE acquirer_reports
SET matched_count = $2, matched_amount = $3, amount_mismatch_count = $4, amount_mismatch_report_amount = $5,
    amount_mismatch_ledger_amount = $6, missing_in_ledger_count = $7, missing_in_ledger_amount = $8,
    missing_in_report_count = $9, missing_in_report_amount = $10
WHERE id = $1;

-- acquirer_report_by_id --
-- $1 = report id, with how many of its exceptions are still open
SELECT r.*, (SELECT count(*) FROM acquirer_report_exceptions x
             WHERE x.report_id = r.id AND x.resolved_at IS NULL) AS unresolved_count
FROM acquirer_reports r WHERE r.id = $1;

-- list_acquirer_reports --
-- $1 cursor, $2 limit+1, $3 from, $4 to (created_at)
SELECT r.*, (SELECT count(*) FROM acquirer_report_exceptions x
             WHERE x.report_id = r.id AND x.resolved_at IS NULL) AS unresolved_count
FROM acquirer_reports r
WHERE ($1::text IS NULL OR r.id < $1)
  AND ($3::timestamptz IS NULL OR r.created_at >= $3)
  AND ($4::timestamptz IS NULL OR r.created_at < $4)
ORDER BY r.id DESC
LIMIT $2;

-- list_acquirer_report_exceptions --
-- $1 report, $2 cursor, $3 limit+1, $4 kind, $5 resolved (true/false/NULL: both), $6 merchant
SELECT * FROM acquirer_report_exceptions
WHERE report_id = $1
  AND ($2::text IS NULL OR id < $2)
  AND ($4::text IS NULL OR kind = $4)
  AND ($5::boolean IS NULL OR (resolved_at IS NOT NULL) = $5)
  AND ($6::text IS NULL OR merchant_id = $6)
ORDER BY id DESC
LIMIT $3;

-- acquirer_report_exceptions_for_export --
-- $1 report, $2 kind, $3 resolved, $4 merchant: in report order, for a server-side cursor
SELECT * FROM acquirer_report_exceptions
WHERE report_id = $1
  AND ($2::text IS NULL OR kind = $2)
  AND ($3::boolean IS NULL OR (resolved_at IS NOT NULL) = $3)
  AND ($4::text IS NULL OR merchant_id = $4)
ORDER BY id;

-- acquirer_report_exception_for_update --
-- $1 report, $2 exception
SELECT * FROM acquirer_report_exceptions WHERE report_id = $1 AND id = $2 FOR UPDATE;

-- resolve_acquirer_report_exception --
-- $1 exception, $2 note, $3 resolved_by_type, $4 resolved_by
UPDATE acquirer_report_exceptions
SET resolved_at = now(), resolution_note = $2, resolved_by_type = $3, resolved_by = $4
WHERE id = $1
RETURNING *;

-- mdr_schedules --
-- $1 category filter (NULL: all), $2 a Jakarta day the rows are in force on (NULL: every row): the MDR schedule rows
SELECT id, category, lower(valid) AS effective_from, upper(valid) AS effective_to,
       lower(amounts) AS min_amount, upper(amounts) - 1 AS max_amount, bps, source, created_at
FROM mdr_schedules
WHERE ($1::text IS NULL OR category = $1) AND ($2::date IS NULL OR valid @> $2::date)
ORDER BY category, lower(valid), lower(amounts);

-- mdr_schedule_add --
-- $1 category, $2 effective_from, $3 bands jsonb, $4 source: a new schedule from that day (sql/migrations/110)
SELECT id, category, lower(valid) AS effective_from, upper(valid) AS effective_to,
       lower(amounts) AS min_amount, upper(amounts) - 1 AS max_amount, bps, source, created_at
FROM mdr_schedule_add($1, $2, $3::jsonb, $4);

-- mdr_category_exists --
-- $1 category code
SELECT EXISTS (SELECT 1 FROM mdr_categories WHERE code = $1);

-- read_settlement_calendar --
-- A batch being made holds this (shared) until it commits: an admin adding a non-working day waits for it,
-- so no batch can be made from a calendar that a concurrent addition has just made stale.
SELECT pg_advisory_xact_lock_shared(hashtextextended('settlement_calendar', 0));

-- change_settlement_calendar --
SELECT pg_advisory_xact_lock(hashtextextended('settlement_calendar', 0));

-- settlement_holiday_days --
-- $1 = from day: the admin-added non-working days from there on
SELECT day FROM settlement_holidays WHERE day >= $1 ORDER BY day;

-- settlement_holidays --
-- $1 = from day (NULL: all)
SELECT * FROM settlement_holidays WHERE ($1::date IS NULL OR day >= $1) ORDER BY day;

-- latest_settlement_value_date --
SELECT max(value_date) FROM settlement_batches;

-- insert_settlement_holiday --
-- $1 day, $2 reason, $3 created_by; nothing when the day is already there
INSERT INTO settlement_holidays (day, reason, created_by) VALUES ($1, $2, $3)
ON CONFLICT (day) DO NOTHING
RETURNING *;
