-- MDR (merchant discount rate) by merchant category, as Bank Indonesia rules it (SPEC §15).
--
-- The rate is data, effective-dated: a schedule row prices payments of one
-- category whose Jakarta business day falls in ``valid`` and whose amount falls
-- in ``amounts``. A new schedule from Bank Indonesia is a new set of rows from its
-- date; the rows in force before it are closed at that date and never priced
-- anything after it, so past payments keep the row that priced them
-- (ledger_entries.mdr_schedule_id). The fee rule stays in one place, the payment
-- functions below (redefined here from 080 with CREATE OR REPLACE).

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE mdr_categories (
    code text PRIMARY KEY,
    name text NOT NULL
);
INSERT INTO mdr_categories (code, name) VALUES
    ('umi', 'Usaha mikro'),
    ('uke', 'Usaha kecil'),
    ('ume', 'Usaha menengah'),
    ('ube', 'Usaha besar'),
    ('education', 'Pendidikan'),
    ('spbu', 'Stasiun pengisian bahan bakar umum'),
    ('blu', 'Badan layanan umum'),
    ('pso', 'Public service obligation'),
    ('g2p', 'Bantuan sosial (government to person)'),
    ('p2g', 'Pembayaran ke pemerintah (person to government)'),
    ('donation', 'Donasi sosial'),
    ('worship', 'Tempat ibadah');

CREATE TABLE mdr_schedules (
    id text PRIMARY KEY,
    category text NOT NULL REFERENCES mdr_categories (code),
    -- [effective_from, effective_to): Jakarta business days; an open upper bound is in force until replaced.
    valid daterange NOT NULL CHECK (NOT isempty(valid) AND NOT lower_inf(valid)),
    -- The amounts (whole rupiah) this row prices, e.g. [1, 500001) and [500001,) for UMI.
    amounts int8range NOT NULL CHECK (NOT isempty(amounts) AND lower(amounts) >= 1),
    bps integer NOT NULL CHECK (bps BETWEEN 0 AND 10000),
    source text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Two rows can never price the same payment: one category, day and amount has one rate.
    CONSTRAINT mdr_schedules_no_overlap EXCLUDE USING gist (category WITH =, valid WITH &&, amounts WITH &&)
);

INSERT INTO mdr_schedules (id, category, valid, amounts, bps, source)
SELECT 'mdr_builtin_' || c.code || '_' || b.n, c.code, daterange('2024-12-01', NULL), b.amounts, b.bps,
       'Bank Indonesia, QRIS MDR in force since 2024-12-01 (built in)'
FROM mdr_categories c
CROSS JOIN LATERAL (
    SELECT * FROM (VALUES
        (1, CASE WHEN c.code = 'umi' THEN int8range(1, 500001) ELSE int8range(1, NULL) END,
            CASE c.code WHEN 'umi' THEN 0 WHEN 'education' THEN 60
                        WHEN 'spbu' THEN 40 WHEN 'blu' THEN 40 WHEN 'pso' THEN 40
                        WHEN 'g2p' THEN 0 WHEN 'p2g' THEN 0 WHEN 'donation' THEN 0 WHEN 'worship' THEN 0
                        ELSE 70 END),
        (2, int8range(500001, NULL), 30)
    ) AS band (n, amounts, bps)
    WHERE band.n = 1 OR c.code = 'umi'
) AS b;

ALTER TABLE merchants ADD COLUMN mdr_category text NOT NULL DEFAULT 'uke' REFERENCES mdr_categories (code);
ALTER TABLE ledger_entries ADD COLUMN mdr_schedule_id text REFERENCES mdr_schedules (id);

-- The schedule row pricing a payment of p_amount on the Jakarta business day p_day; NULL when none does.
-- A day before a category's first row (an acquirer reporting a payment from before 2024-12-01) is
-- priced by that first row: a paid notification is never refused for want of a rate.
CREATE FUNCTION mdr_rate(p_category text, p_day date, p_amount bigint) RETURNS mdr_schedules
LANGUAGE sql STABLE AS $$
    SELECT * FROM mdr_schedules
    WHERE category = p_category AND amounts @> p_amount AND (valid @> p_day OR p_day < lower(valid))
    ORDER BY lower(valid) LIMIT 1
$$;

-- The bps a merchant pays on p_amount on p_day, and the row it came from: the schedule's,
-- or the merchant's contract (fee_bps) when lower. A contract never raises it: the schedule
-- is Bank Indonesia's ceiling. A day no schedule covers raises QS002.
CREATE FUNCTION merchant_mdr(p_merchant_id text, p_day date, p_amount bigint,
                             OUT bps integer, OUT schedule_id text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    rate mdr_schedules;
    contract integer;
    category text;
BEGIN
    SELECT m.fee_bps, m.mdr_category INTO contract, category FROM merchants m WHERE m.id = p_merchant_id;
    rate := mdr_rate(category, p_day, p_amount);
    IF rate.id IS NULL THEN
        RAISE EXCEPTION 'no MDR schedule for category % on %', category, p_day
            USING ERRCODE = 'QS002', DETAIL = category;
    END IF;
    bps := LEAST(rate.bps, COALESCE(contract, rate.bps));
    schedule_id := rate.id;
END
$$;

-- The highest rate a category's schedule in force on p_day charges: a merchant's contract must not exceed it.
CREATE FUNCTION mdr_ceiling(p_category text, p_day date) RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT max(bps) FROM mdr_schedules WHERE category = p_category AND valid @> p_day
$$;

-- fee_bps is a contract below the schedule: one above the merchant's category's rate is refused
-- (SQLSTATE QS003), whichever of the two changed.
CREATE FUNCTION merchant_contract_within_schedule() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ceiling integer;
BEGIN
    IF NEW.fee_bps IS NOT NULL THEN
        ceiling := mdr_ceiling(NEW.mdr_category, (now() AT TIME ZONE 'Asia/Jakarta')::date);
        IF ceiling IS NOT NULL AND NEW.fee_bps > ceiling THEN
            RAISE EXCEPTION 'fee_bps % is above the % schedule (% bps)', NEW.fee_bps, NEW.mdr_category, ceiling
                USING ERRCODE = 'QS003', DETAIL = ceiling::text;
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER merchants_contract_within_schedule BEFORE INSERT OR UPDATE OF fee_bps, mdr_category ON merchants
    FOR EACH ROW EXECUTE FUNCTION merchant_contract_within_schedule();

-- A new schedule for a category from p_from (a core.finance.mdr.NewSchedule's rows in p_bands:
-- [{"id", "min_amount", "max_amount" (null: no upper bound), "bps"}]). The rows in force at
-- p_from with no end are closed there, in this statement; a schedule that already starts on
-- or after p_from, or a closed one reaching past it, overlaps and the exclusion constraint
-- refuses it (23P01). Returns the new rows.
CREATE FUNCTION mdr_schedule_add(p_category text, p_from date, p_bands jsonb, p_source text)
RETURNS SETOF mdr_schedules LANGUAGE plpgsql AS $$
BEGIN
    -- Two at once: the second waits on the first's row locks, then finds nothing open to close and
    -- its insert overlaps the first's rows, which the exclusion constraint refuses.
    UPDATE mdr_schedules SET valid = daterange(lower(valid), p_from)
    WHERE category = p_category AND upper_inf(valid) AND lower(valid) < p_from;
    RETURN QUERY
    INSERT INTO mdr_schedules (id, category, valid, amounts, bps, source)
    SELECT b->>'id', p_category, daterange(p_from, NULL),
           int8range((b->>'min_amount')::bigint, CASE WHEN b->>'max_amount' IS NULL THEN NULL
                                                   ELSE (b->>'max_amount')::bigint + 1 END),
           (b->>'bps')::integer, p_source
    FROM jsonb_array_elements(p_bands) AS b
    RETURNING *;
END
$$;

-- Schedule rows are priced history: only the open end of one in force may be closed (above).
CREATE FUNCTION mdr_schedule_history_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.id <> OLD.id OR NEW.category <> OLD.category OR NEW.amounts <> OLD.amounts
       OR NEW.bps <> OLD.bps OR lower(NEW.valid) <> lower(OLD.valid) OR NOT upper_inf(OLD.valid) THEN
        RAISE EXCEPTION 'MDR schedule rows are history: only an open one may be closed' USING ERRCODE = 'QS004';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER mdr_schedules_history_fixed BEFORE UPDATE OR DELETE ON mdr_schedules
    FOR EACH ROW EXECUTE FUNCTION mdr_schedule_history_fixed();

-- payment_create (080): the quoted fee_bps is the schedule's for today's business day, no longer
-- the caller's; the payment is priced again, by the day it is paid, in payment_transition.
CREATE OR REPLACE FUNCTION payment_create(p jsonb) RETURNS transactions LANGUAGE plpgsql AS $$
DECLARE
    created transactions;
BEGIN
    INSERT INTO transactions (id, merchant_id, outlet_id, terminal_id, device_id, kind, status, amount,
                              reference, qr_payload, fee_bps, expires_at)
    SELECT r.id, r.merchant_id, r.outlet_id, r.terminal_id, r.device_id, r.kind, 'pending', r.amount,
           r.reference, r.qr_payload,
           (merchant_mdr(r.merchant_id, (now() AT TIME ZONE 'Asia/Jakarta')::date, r.amount)).bps, r.expires_at
    FROM jsonb_populate_record(NULL::transactions, p) AS r
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

-- payment_transition (080): becoming paid prices the payment by its merchant's MDR on the
-- Jakarta day it was paid (merchant_mdr), keeps that bps on the transaction and the schedule
-- row on the platform_fee ledger row. Otherwise as in 080.
CREATE OR REPLACE FUNCTION payment_transition(p_transaction_id text, p jsonb) RETURNS transactions
LANGUAGE plpgsql AS $$
DECLARE
    v_txn transactions;
    updated transactions;
    v_to text := p->>'to_status';
    v_reason text := p->>'reason';
    v_paid_at timestamptz := (p->>'paid_at')::timestamptz;
    v_bps integer;
    v_schedule_id text;
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
    IF v_to = 'paid' THEN
        SELECT m.bps, m.schedule_id INTO v_bps, v_schedule_id
        FROM merchant_mdr(v_txn.merchant_id, (COALESCE(v_paid_at, now()) AT TIME ZONE 'Asia/Jakarta')::date,
                          v_txn.amount) AS m;
    END IF;
    UPDATE transactions
    SET status = v_to,
        paid_at = CASE WHEN v_to = 'paid' THEN v_paid_at END,
        fee_bps = COALESCE(v_bps, fee_bps),
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
        INSERT INTO ledger_entries (id, transaction_id, merchant_id, entry_type, amount, mdr_schedule_id)
        VALUES (p->'ledger_ids'->>0, updated.id, updated.merchant_id, 'gross_income', updated.amount, NULL),
               (p->'ledger_ids'->>1, updated.id, updated.merchant_id, 'platform_fee', v_fee, v_schedule_id),
               (p->'ledger_ids'->>2, updated.id, updated.merchant_id, 'merchant_payable', updated.amount - v_fee, NULL);
        IF jsonb_typeof(p->'downlink') = 'object' THEN
            PERFORM enqueue_downlink(p->'downlink'
                || jsonb_build_object('payload', p->'downlink'->'payload' || jsonb_build_object('currency', updated.currency)));
        END IF;
    END IF;
    RETURN updated;
END
$$;
