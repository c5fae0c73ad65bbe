-- insert_merchant --
-- $1 id, $2 name, $3 legal_name, $4 city, $5 postal_code, $6 mcc, $7 nmid, $8 email, $9 fee_bps, $10 mdr_category
INSERT INTO merchants (id, code, name, legal_name, city, postal_code, mcc, nmid, email, fee_bps, mdr_category)
VALUES ($1, 'M' || lpad(nextval('merchant_code_seq')::text, 6, '0'), $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING *;

-- merchant_by_id --
-- $1 merchant id, $2 merchant scope (NULL: any merchant)
SELECT * FROM merchants WHERE id = $1 AND ($2::text IS NULL OR id = $2);

-- merchant_by_id_for_update --
-- $1 merchant id
SELECT * FROM merchants WHERE id = $1 FOR UPDATE;

-- merchant_by_id_or_code --
-- $1 merchant id or code
SELECT * FROM merchants WHERE id = $1 OR code = upper($1);

-- merchant_by_nmid --
-- $1 nmid
SELECT * FROM merchants WHERE nmid = $1;

-- list_merchants --
-- $1 cursor, $2 limit + 1, $3 status filter, $4 merchant scope,
-- $5 search: a code or an NMID (whole), $6 the same search as an ILIKE pattern on the name
SELECT * FROM merchants
WHERE ($1::text IS NULL OR id < $1)
  AND ($3::text IS NULL OR status = $3)
  AND ($4::text IS NULL OR id = $4)
  AND ($5::text IS NULL OR code = upper($5) OR nmid = $5 OR name ILIKE $6)
ORDER BY id DESC LIMIT $2;

-- update_merchant --
-- $1 id, $2 name, $3 legal_name, $4 city, $5 postal_code, $6 mcc, $7 nmid, $8 email, $9 fee_bps, $10 mdr_category
UPDATE merchants
SET name = $2, legal_name = $3, city = $4, postal_code = $5, mcc = $6, nmid = $7, email = $8,
    fee_bps = $9, mdr_category = $10, updated_at = now()
WHERE id = $1
RETURNING *;

-- approve_merchant --
-- $1 id, $2 reviewer id
UPDATE merchants
SET status = 'active', approved_at = now(), rejection_reason = NULL, reviewed_by = $2, updated_at = now()
WHERE id = $1
RETURNING *;

-- reject_merchant --
-- $1 id, $2 reason, $3 reviewer id
UPDATE merchants
SET status = 'rejected', rejected_at = now(), rejection_reason = $2, reviewed_by = $3, updated_at = now()
WHERE id = $1
RETURNING *;

-- insert_outlet --
-- $1 id, $2 merchant id, $3 name, $4 address, $5 city
INSERT INTO outlets (id, merchant_id, name, address, city) VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- outlet_by_id --
-- $1 outlet id, $2 merchant scope (NULL: any merchant)
SELECT * FROM outlets WHERE id = $1 AND ($2::text IS NULL OR merchant_id = $2);

-- outlet_by_merchant_and_name --
-- $1 merchant id, $2 outlet name
SELECT * FROM outlets WHERE merchant_id = $1 AND name = $2 ORDER BY id LIMIT 1;

-- list_outlets --
-- $1 cursor, $2 limit + 1, $3 merchant id filter, $4 merchant scope
SELECT * FROM outlets
WHERE ($1::text IS NULL OR id < $1)
  AND ($3::text IS NULL OR merchant_id = $3)
  AND ($4::text IS NULL OR merchant_id = $4)
ORDER BY id DESC LIMIT $2;

-- insert_terminal --
-- $1 id, $2 outlet id, $3 merchant id, $4 name, $5 static_qris
INSERT INTO terminals (id, outlet_id, merchant_id, name, terminal_code, static_qris)
VALUES ($1, $2, $3, $4, 'T' || lpad(nextval('terminal_code_seq')::text, 6, '0'), $5)
RETURNING *;

-- terminal_by_id --
-- $1 terminal id, $2 merchant scope (NULL: any merchant); with its bound soundbox
SELECT t.*, (SELECT jsonb_build_object('id', d.id, 'serial_number', d.serial_number, 'model', d.model_id, 'status', d.status)
        FROM devices d WHERE d.terminal_id = t.id AND d.role = 'soundbox') AS bound_device
FROM terminals t WHERE t.id = $1 AND ($2::text IS NULL OR t.merchant_id = $2);

-- terminal_by_outlet_and_name --
-- $1 outlet id, $2 terminal name
SELECT t.*, (SELECT jsonb_build_object('id', d.id, 'serial_number', d.serial_number, 'model', d.model_id, 'status', d.status)
        FROM devices d WHERE d.terminal_id = t.id AND d.role = 'soundbox') AS bound_device
FROM terminals t WHERE t.outlet_id = $1 AND t.name = $2 ORDER BY t.id LIMIT 1;

-- list_terminals --
-- $1 cursor, $2 limit + 1, $3 merchant id filter, $4 outlet id filter, $5 status filter, $6 merchant scope,
-- $7 a terminal code (whole)
SELECT t.*, (SELECT jsonb_build_object('id', d.id, 'serial_number', d.serial_number, 'model', d.model_id, 'status', d.status)
        FROM devices d WHERE d.terminal_id = t.id AND d.role = 'soundbox') AS bound_device
FROM terminals t
WHERE ($1::text IS NULL OR t.id < $1)
  AND ($3::text IS NULL OR t.merchant_id = $3)
  AND ($4::text IS NULL OR t.outlet_id = $4)
  AND ($5::text IS NULL OR t.status = $5)
  AND ($6::text IS NULL OR t.merchant_id = $6)
  AND ($7::text IS NULL OR t.terminal_code = upper($7))
ORDER BY t.id DESC LIMIT $2;

-- insert_identity_change --
-- $1 id, $2 merchant id, $3 changes {"field": {"from", "to"}}, $4 proposer type, $5 proposer id
INSERT INTO merchant_identity_changes (id, merchant_id, changes, proposed_by_type, proposed_by_id)
VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- identity_change_for_update --
-- $1 change id, $2 merchant id
SELECT * FROM merchant_identity_changes WHERE id = $1 AND merchant_id = $2 FOR UPDATE;

-- decide_identity_change --
-- $1 change id, $2 status (applied | rejected), $3 decider type, $4 decider id, $5 reason
UPDATE merchant_identity_changes
SET status = $2, decided_by_type = $3, decided_by_id = $4, decision_reason = $5, decided_at = now()
WHERE id = $1
RETURNING *;

-- list_identity_changes --
-- $1 merchant id, $2 cursor (change id), $3 limit+1: newest first
SELECT * FROM merchant_identity_changes
WHERE merchant_id = $1 AND ($2::text IS NULL OR id < $2)
ORDER BY id DESC
LIMIT $3;
