-- Dynamic QRs an acquirer issued (SNAP qr-mpm-generate, SPEC §13): the acquirer's own reference for
-- the transaction, and the bookkeeping of polling it (qr-mpm-query) and cancelling it (qr-mpm-cancel).
-- Written in the same statement as the transaction (sql/queries/acquirers.sql, payment_create_acquired):
-- a QR whose row is missing was never written at all.
CREATE TABLE acquirer_qrs (
    transaction_id     text PRIMARY KEY REFERENCES transactions (id),
    acquirer_code      text NOT NULL REFERENCES acquirers (code),
    -- referenceNo of the generate answer: what qr-mpm-query and qr-mpm-cancel name.
    acquirer_reference text NOT NULL CHECK (length(acquirer_reference) BETWEEN 1 AND 64),
    -- When the poller may next ask about it; NULL once nothing is left to ask (paid, or cancelled out).
    next_query_at      timestamptz DEFAULT now(),
    queries            integer NOT NULL DEFAULT 0,
    last_status        text,
    -- Set when qr-mpm-cancel succeeded for a QR that expired or failed locally.
    cancelled_at       timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (acquirer_code, acquirer_reference)
);
CREATE INDEX acquirer_qrs_due ON acquirer_qrs (next_query_at) WHERE next_query_at IS NOT NULL;
