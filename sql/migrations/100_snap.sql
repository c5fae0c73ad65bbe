-- SNAP (SPEC §13–§14): B2B access tokens and X-EXTERNAL-ID uniqueness, shared by every API node.

-- Only a SHA-256 of a token is stored: a read of this table cannot be replayed as a token.
-- client_kind + client_id name who got it (an acquirer's code, later a partner's id), so a
-- token is accepted only from the client it was issued to.
CREATE TABLE snap_access_tokens (
    token_hash  bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    client_kind text NOT NULL CHECK (client_kind IN ('acquirer', 'partner')),
    client_id   text NOT NULL,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX snap_access_tokens_expiry ON snap_access_tokens (expires_at);

-- X-EXTERNAL-ID is unique per partner per day (the day in WIB, as the senders count it).
CREATE TABLE snap_external_ids (
    client_kind text NOT NULL,
    client_id   text NOT NULL,
    day         date NOT NULL,
    external_id text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 64),
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_kind, client_id, day, external_id)
);
