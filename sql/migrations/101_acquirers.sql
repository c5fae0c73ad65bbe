-- The acquirer registry (SPEC §13) and the ids merchants and terminals carry at their acquirer.

CREATE TABLE acquirers (
    id          text PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    protocol    text NOT NULL CHECK (protocol IN ('snap', 'midtrans', 'xendit', 'doku', 'platform')),
    -- What may be shown: client_key, public_key_pem, notify_signature, base_url, channel_id, status_map...
    settings    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    -- The write-only ones (client_secret, private_key_pem, server_key...), one Fernet token of their JSON
    -- (core/acquirers/secrets.py); never in settings.
    secrets     bytea,
    -- The secret names present, so an answer can say which are set without decrypting.
    secret_names text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- X-CLIENT-KEY / X-PARTNER-ID names exactly one acquirer.
CREATE UNIQUE INDEX acquirers_client_key ON acquirers ((settings ->> 'client_key')) WHERE settings ? 'client_key';

ALTER TABLE merchants
    ADD COLUMN acquirer_code text REFERENCES acquirers (code),
    ADD COLUMN acquirer_merchant_id text CHECK (length(acquirer_merchant_id) BETWEEN 1 AND 64);
CREATE INDEX merchants_acquirer ON merchants (acquirer_code) WHERE acquirer_code IS NOT NULL;

-- NULL means the acquirer knows the terminal by its terminal_code.
ALTER TABLE terminals ADD COLUMN acquirer_terminal_id text CHECK (length(acquirer_terminal_id) BETWEEN 1 AND 64);
CREATE INDEX terminals_acquirer_terminal ON terminals ((coalesce(acquirer_terminal_id, terminal_code)));
