-- Per-account login backoff (issue 23, finding 5): failed logins counted per
-- account email whatever the client address, shared by every API node.
-- Keyed by the email tried, known or not, so a refusal says nothing about
-- whether the account exists. Unlogged: a crash forgetting the counts only
-- gives a guesser a few free attempts again.

CREATE UNLOGGED TABLE login_backoff (
    kind text NOT NULL CHECK (kind IN ('admin', 'merchant')),
    email text NOT NULL CHECK (length(email) <= 254),
    failures integer NOT NULL CHECK (failures > 0),
    last_failure_at timestamptz NOT NULL,
    blocked_until timestamptz,
    PRIMARY KEY (kind, email)
);

CREATE INDEX login_backoff_last_failure ON login_backoff (last_failure_at);
