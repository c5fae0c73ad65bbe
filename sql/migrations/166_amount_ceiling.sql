-- AMOUNT_CEILING (core/config.py): no QRIS amount comes near Rp1,000,000,000 (100 × Bank Indonesia's
-- cap for one payment). The API, callbacks, SNAP notify and adjustments refuse an amount above it;
-- the database holds it for every writer. An adjustment is also bounded by FINANCE_MAX_ADJUSTMENT
-- (at most the ceiling), which only the service knows.
-- NOT VALID: new rows are checked; a deployment's existing rows are not rewritten or refused.
ALTER TABLE settlement_batch_adjustments
    ADD CONSTRAINT settlement_batch_adjustments_amount_ceiling CHECK (abs(amount) <= 1000000000) NOT VALID;
ALTER TABLE transactions
    ADD CONSTRAINT transactions_amount_ceiling CHECK (amount <= 1000000000) NOT VALID;
