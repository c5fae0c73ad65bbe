-- Acquirer settlement reports: each imported file once (by content hash), its
-- counts and totals, and the lines that did not match the ledger (exceptions),
-- each resolvable once with a note. Matched lines are counted, not stored.

CREATE TABLE acquirer_reports (
    id text PRIMARY KEY,
    content_sha256 text NOT NULL UNIQUE,
    file_name text,
    byte_size bigint NOT NULL,
    line_count integer NOT NULL,
    settlement_date_from date NOT NULL,
    settlement_date_to date NOT NULL,
    settlement_dates date[] NOT NULL,
    report_amount bigint NOT NULL,
    report_fee bigint NOT NULL,
    matched_count integer NOT NULL DEFAULT 0,
    matched_amount bigint NOT NULL DEFAULT 0,
    amount_mismatch_count integer NOT NULL DEFAULT 0,
    amount_mismatch_report_amount bigint NOT NULL DEFAULT 0,
    amount_mismatch_ledger_amount bigint NOT NULL DEFAULT 0,
    missing_in_ledger_count integer NOT NULL DEFAULT 0,
    missing_in_ledger_amount bigint NOT NULL DEFAULT 0,
    missing_in_report_count integer NOT NULL DEFAULT 0,
    missing_in_report_amount bigint NOT NULL DEFAULT 0,
    settlement_lag_days integer NOT NULL,
    imported_by_type text NOT NULL,
    imported_by text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX acquirer_reports_created ON acquirer_reports (created_at);

-- Exception ids look like every other id (prefix + 26 Crockford base32 characters, here
-- hex from a sequence) so the shared cursor rules apply; they sort in insert order.
CREATE SEQUENCE acquirer_report_exception_seq CACHE 1000;

CREATE TABLE acquirer_report_exceptions (
    id text PRIMARY KEY
        DEFAULT 'arx_' || lpad(upper(to_hex(nextval('acquirer_report_exception_seq'))), 26, '0'),
    report_id text NOT NULL REFERENCES acquirer_reports (id),
    kind text NOT NULL CHECK (kind IN ('amount_mismatch', 'missing_in_ledger', 'missing_in_report')),
    line_number integer,                 -- the report's line; NULL for missing_in_report
    provider_reference text,             -- NULL only for a paid transaction that has none
    settlement_date date NOT NULL,
    report_amount bigint,                -- NULL for missing_in_report
    report_fee bigint,
    ledger_amount bigint,                -- NULL when the ledger has no such transaction
    terminal_id text,                    -- as the report gives them
    merchant_nmid text,
    transaction_id text REFERENCES transactions (id),
    merchant_id text REFERENCES merchants (id),
    ledger_status text,                  -- the transaction's status (missing_in_ledger: not paid)
    paid_at timestamptz,
    resolved_at timestamptz,
    resolved_by_type text,
    resolved_by text,
    resolution_note text,
    CHECK ((resolved_at IS NULL) = (resolution_note IS NULL)),
    CHECK (kind = 'missing_in_report' OR provider_reference IS NOT NULL)
);
CREATE INDEX acquirer_report_exceptions_report ON acquirer_report_exceptions (report_id, id);

-- Exceptions are resolved once (the resolution columns, from unresolved), never otherwise changed or deleted.
CREATE FUNCTION acquirer_report_exceptions_resolve_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.resolved_at IS NOT NULL
       OR (to_jsonb(NEW) - ARRAY['resolved_at', 'resolved_by_type', 'resolved_by', 'resolution_note'])
          IS DISTINCT FROM (to_jsonb(OLD) - ARRAY['resolved_at', 'resolved_by_type', 'resolved_by', 'resolution_note'])
    THEN
        RAISE EXCEPTION 'acquirer_report_exceptions rows can only be resolved, once' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER acquirer_report_exceptions_guard BEFORE UPDATE OR DELETE ON acquirer_report_exceptions
    FOR EACH ROW EXECUTE FUNCTION acquirer_report_exceptions_resolve_only();

-- The ledger side of a report: paid transactions by the time they were paid.
CREATE INDEX transactions_paid_at ON transactions (paid_at) WHERE status = 'paid';
