-- The payout account in force is the newest *by a database sequence*, not by id: ids
-- come from the API node's wall clock, so a clock step or skew between nodes made a
-- newer change sort older (the adversarial run, issue 23). Existing rows keep their
-- order (numbered by id); the append-only trigger is off only for that numbering.
ALTER TABLE merchant_payout_accounts ADD COLUMN seq bigint;
ALTER TABLE merchant_payout_accounts DISABLE TRIGGER merchant_payout_accounts_append_only;
UPDATE merchant_payout_accounts a SET seq = n.seq
FROM (SELECT id, row_number() OVER (ORDER BY id) AS seq FROM merchant_payout_accounts) n
WHERE n.id = a.id;
ALTER TABLE merchant_payout_accounts ENABLE TRIGGER merchant_payout_accounts_append_only;
CREATE SEQUENCE merchant_payout_accounts_seq OWNED BY merchant_payout_accounts.seq;
SELECT setval('merchant_payout_accounts_seq', coalesce((SELECT max(seq) FROM merchant_payout_accounts), 0) + 1, false);
ALTER TABLE merchant_payout_accounts
    ALTER COLUMN seq SET DEFAULT nextval('merchant_payout_accounts_seq'),
    ALTER COLUMN seq SET NOT NULL,
    ADD CONSTRAINT merchant_payout_accounts_seq_unique UNIQUE (seq);
CREATE INDEX merchant_payout_accounts_in_force ON merchant_payout_accounts (merchant_id, seq);
