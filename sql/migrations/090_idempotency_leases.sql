-- An Idempotency-Key claim is a lease: its holder renews it while the request runs
-- (core/idempotency.py). A holder that stops renewing (killed, cut off from the
-- database) lets it lapse in seconds and a retry of the same request takes over,
-- instead of waiting for the key's TTL. `holder` says whose lease it is, so a
-- holder that lost its lease can no longer store or release the key.
-- Claims made before this migration lapse at once (their holders are gone).
ALTER TABLE idempotency_keys
    ADD COLUMN holder uuid,
    ADD COLUMN lease_expires_at timestamptz NOT NULL DEFAULT now();
