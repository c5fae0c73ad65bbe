-- Payout accounts: the bank account each merchant is paid into, with its history,
-- the list of banks the platform knows, and the account a settlement batch pays
-- (fixed when the batch is created, see docs/finance.md "Payout accounts").

-- Indonesian banks by their 3-digit bank code (kode bank / sandi kliring, as used by
-- SKNBI, RTGS and BI-FAST). An operator adds a bank through
-- PUT /admin/payout-banks/{code}; rows are never deleted (a bank that merges is
-- set inactive: existing accounts keep pointing at it, new ones are refused).
CREATE TABLE payout_banks (
    code text PRIMARY KEY CHECK (code ~ '^[0-9]{3}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- Account numbers of this bank have this many digits (inclusive).
    account_digits_min integer NOT NULL DEFAULT 6,
    account_digits_max integer NOT NULL DEFAULT 20,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (account_digits_min BETWEEN 5 AND account_digits_max AND account_digits_max <= 20)
);

INSERT INTO payout_banks (code, name, account_digits_min, account_digits_max) VALUES
    ('002', 'Bank Rakyat Indonesia (BRI)', 15, 15),
    ('008', 'Bank Mandiri', 13, 13),
    ('009', 'Bank Negara Indonesia (BNI)', 10, 10),
    ('011', 'Bank Danamon Indonesia', 6, 20),
    ('013', 'Bank Permata', 6, 20),
    ('014', 'Bank Central Asia (BCA)', 10, 10),
    ('016', 'Maybank Indonesia', 6, 20),
    ('019', 'Bank Panin', 6, 20),
    ('022', 'Bank CIMB Niaga', 6, 20),
    ('023', 'Bank UOB Indonesia', 6, 20),
    ('028', 'Bank OCBC NISP', 6, 20),
    ('031', 'Citibank', 6, 20),
    ('037', 'Bank Artha Graha Internasional', 6, 20),
    ('041', 'Bank HSBC Indonesia', 6, 20),
    ('046', 'Bank DBS Indonesia', 6, 20),
    ('050', 'Standard Chartered Bank', 6, 20),
    ('110', 'Bank BJB', 6, 20),
    ('111', 'Bank DKI', 6, 20),
    ('112', 'Bank BPD DIY', 6, 20),
    ('113', 'Bank Jateng', 6, 20),
    ('114', 'Bank Jatim', 6, 20),
    ('117', 'Bank Sumut', 6, 20),
    ('118', 'Bank Nagari', 6, 20),
    ('120', 'Bank Sumsel Babel', 6, 20),
    ('129', 'Bank BPD Bali', 6, 20),
    ('147', 'Bank Muamalat Indonesia', 6, 20),
    ('153', 'Bank Sinarmas', 6, 20),
    ('200', 'Bank Tabungan Negara (BTN)', 6, 20),
    ('213', 'Bank SMBC Indonesia', 6, 20),
    ('426', 'Bank Mega', 6, 20),
    ('441', 'KB Bank', 6, 20),
    ('451', 'Bank Syariah Indonesia (BSI)', 6, 20),
    ('484', 'Bank KEB Hana Indonesia', 6, 20),
    ('490', 'Bank Neo Commerce', 6, 20),
    ('494', 'Bank Raya Indonesia', 6, 20),
    ('501', 'Bank Digital BCA', 6, 20),
    ('535', 'SeaBank Indonesia', 6, 20),
    ('542', 'Bank Jago', 6, 20),
    ('547', 'Bank BTPN Syariah', 6, 20),
    ('567', 'Allo Bank Indonesia', 6, 20),
    ('950', 'Bank Commonwealth', 6, 20);

-- A merchant's payout account history: a change is a new row, rows never change,
-- the newest row (by id, ids are time-ordered) is the account in force.
CREATE TABLE merchant_payout_accounts (
    id text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants (id),
    bank_code text NOT NULL REFERENCES payout_banks (code),
    account_number text NOT NULL CHECK (account_number ~ '^[0-9]{5,20}$'),
    -- Normalised for bank files: upper case A-Z, 0-9, space and . , - / ( ) & only.
    account_name text NOT NULL CHECK (account_name ~ '^[A-Z0-9 .,/()&-]{1,70}$'),
    created_by_type text NOT NULL,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX merchant_payout_accounts_merchant ON merchant_payout_accounts (merchant_id, id);
CREATE TRIGGER merchant_payout_accounts_append_only BEFORE UPDATE OR DELETE ON merchant_payout_accounts
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- The account a batch pays: the merchant's account in force when the batch was
-- created. Account rows never change, so pointing at one is a snapshot; a later
-- change of the merchant's account cannot redirect this batch.
ALTER TABLE settlement_batches ADD COLUMN payout_account_id text REFERENCES merchant_payout_accounts (id);
