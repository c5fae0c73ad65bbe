-- issue_snap_token --
-- $1 token hash, $2 client kind, $3 client id, $4 lifetime in seconds
INSERT INTO snap_access_tokens (token_hash, client_kind, client_id, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
RETURNING expires_at;

-- snap_token_holder --
-- $1 token hash: who holds this live token (no row when unknown or expired)
SELECT client_kind, client_id FROM snap_access_tokens WHERE token_hash = $1 AND expires_at > now();

-- purge_snap_tokens --
-- $1 at most this many a run. Kept an hour past expiry, so a refusal can still be told "expired" from "unknown".
DELETE FROM snap_access_tokens
WHERE token_hash IN (
    SELECT token_hash FROM snap_access_tokens WHERE expires_at <= now() - interval '1 hour' LIMIT $1
);

-- claim_snap_external_id --
-- $1 client kind, $2 client id, $3 external id. A row only for the first use today (WIB).
INSERT INTO snap_external_ids (client_kind, client_id, day, external_id)
VALUES ($1, $2, (now() AT TIME ZONE 'Asia/Jakarta')::date, $3)
ON CONFLICT DO NOTHING
RETURNING external_id;

-- purge_snap_external_ids --
-- $1 at most this many a run. Only today's ids can collide; yesterday's are kept a day for investigation.
DELETE FROM snap_external_ids
WHERE (client_kind, client_id, day, external_id) IN (
    SELECT client_kind, client_id, day, external_id FROM snap_external_ids
    WHERE day < (now() AT TIME ZONE 'Asia/Jakarta')::date - 1
    LIMIT $1
);

-- release_snap_external_id --
-- $1 client kind, $2 client id, $3 external id: the request it came with was refused, so it stays unused.
DELETE FROM snap_external_ids
WHERE client_kind = $1 AND client_id = $2 AND external_id = $3 AND day = (now() AT TIME ZONE 'Asia/Jakarta')::date;
