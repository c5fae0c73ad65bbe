-- metrics_devices_online --
-- The fleet online, whatever broker node holds each session (partial index devices_online).
SELECT count(*) FROM devices WHERE online;

-- metrics_outbox_open --
-- Downlinks not yet closed, and the age of the oldest (partial indexes on the open statuses).
SELECT count(*) AS open, extract(epoch FROM now() - min(created_at))::float8 AS oldest_age_s
FROM device_outbox
WHERE status IN ('pending', 'sent');
