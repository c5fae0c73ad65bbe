-- metrics_devices_online --
-- The fleet online, whatever broker node holds each session (partial index devices_online).
SELECT count(*) FROM devices WHERE online;

-- metrics_outbox_open --
-- Downlinks not yet closed, and the age of the oldest (partial indexes on the open statuses).
SELECT count(*) AS open, extract(epoch FROM now() - min(created_at))::float8 AS oldest_age_s
FROM device_outbox
WHERE status IN ('pending', 'sent');

-- observability_outbox_counts --
-- $1 id floor of the window (core/ids.py id_floor), $2 window start. The open downlinks (pending, sent),
-- all of them, through the partial indexes on the open set; the closed statuses among the rows created in
-- the window, through the primary key. Neither part reads the outbox's history, however long it is.
SELECT status, count(*) AS count FROM device_outbox WHERE status IN ('pending', 'sent') GROUP BY status
UNION ALL
SELECT status, count(*) AS count FROM device_outbox
WHERE id >= $1 AND created_at >= $2 AND status NOT IN ('pending', 'sent') GROUP BY status
ORDER BY status;

-- observability_transactions_since --
-- $1 id floor of the window (core/ids.py id_floor), $2 window start: count and amount by status of the
-- transactions created in the window, found through the primary key, not by reading every transaction.
SELECT status, count(*) AS count, COALESCE(sum(amount), 0)::bigint AS amount FROM transactions
WHERE id >= $1 AND created_at >= $2 GROUP BY status ORDER BY status;
