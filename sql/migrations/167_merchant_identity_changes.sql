-- A change to an approved merchant's identity (name, legal name, NMID, email: what the QR shows, the
-- national merchant id, where the bank file's notices go) waits here until a second person applies it
-- (core/merchants/identity_changes.py); until then the merchant keeps its approved identity and keeps
-- taking payments. Four eyes held here too: the row that applies a change names someone else.
CREATE TABLE merchant_identity_changes (
    id text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants (id),
    -- {"field": {"from": old, "to": new}} for the fields that change
    changes jsonb NOT NULL CHECK (jsonb_typeof(changes) = 'object' AND changes <> '{}'::jsonb),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'applied', 'rejected')),
    proposed_by_type text NOT NULL,
    proposed_by_id text,
    decided_by_type text,
    decided_by_id text,
    decision_reason text CHECK (length(decision_reason) <= 500),
    created_at timestamptz NOT NULL DEFAULT now(),
    decided_at timestamptz,
    CHECK ((status = 'pending') = (decided_at IS NULL)),
    CHECK (status <> 'applied' OR (
        proposed_by_id IS NOT NULL AND decided_by_id IS NOT NULL
        AND (decided_by_type, decided_by_id) IS DISTINCT FROM (proposed_by_type, proposed_by_id)))
);
-- One open proposal per merchant: a second would be decided against an identity the first may change.
CREATE UNIQUE INDEX merchant_identity_changes_one_pending ON merchant_identity_changes (merchant_id)
    WHERE status = 'pending';
CREATE INDEX merchant_identity_changes_by_merchant ON merchant_identity_changes (merchant_id, created_at DESC);
