-- enqueue_downlink --
-- $1 = a core.outbox.NewDownlink: inserted, and the publisher NOTIFYed on commit (sql/migrations/080)
SELECT enqueue_downlink($1::jsonb);

-- notify_outbox --
-- $1 = device id: wakes the broker process's publisher when the transaction commits
SELECT pg_notify('device_outbox', $1);

-- open_downlinks_for_devices --
-- $1 device ids, $2 limit: what to (re)send now, oldest first, locked against a second publisher; signed
-- rows in their counter's order (a device refuses a counter lower than one it has played)
SELECT id, message_id, device_id, kind, topic, payload, attempts, counter FROM device_outbox
WHERE device_id = ANY ($1::text[])
  AND status IN ('pending', 'sent') AND next_attempt_at <= now() AND expires_at > now()
ORDER BY counter NULLS FIRST, id
LIMIT $2
FOR UPDATE SKIP LOCKED;

-- mark_downlinks_sent --
-- $1 outbox ids, $2 first retry delay s, $3 max retry delay s: exponential back-off until acked;
-- a reply that expects no ack is delivered once
UPDATE device_outbox
SET status = CASE WHEN kind = 'dynamic_qr_response' THEN 'delivered' ELSE 'sent' END, attempts = attempts + 1, sent_at = now(),
    next_attempt_at = now() + make_interval(secs => least($3::float8, $2::float8 * power(2, attempts)))
WHERE id = ANY ($1::text[]);

-- due_downlink_devices --
-- $1 limit, $2 this broker instance: devices with something due (a retry, or a pending row whose wake-up
-- was missed), leaving out devices online on another node: that node delivers (and retries) them.
SELECT DISTINCT o.device_id FROM device_outbox o
WHERE o.status IN ('pending', 'sent') AND o.next_attempt_at <= now() AND o.expires_at > now()
  AND NOT EXISTS (
    SELECT 1 FROM devices d WHERE d.id = o.device_id AND d.online AND d.broker_instance_id IS DISTINCT FROM $2)
LIMIT $1;

-- defer_downlinks --
-- $1 device ids, $2 seconds, $3 at most this many rows: offline devices are not rescanned every tick;
-- connecting resets this. Only rows due now: one deferred already keeps its time, so a busy terminal
-- whose soundbox is offline costs a tick its new rows, not its whole backlog rewritten again; and at
-- most $3 of them, so a large backlog coming due at once is spread over ticks instead of holding one.
UPDATE device_outbox SET next_attempt_at = now() + make_interval(secs => $2::float8)
WHERE id IN (
    SELECT id FROM device_outbox
    WHERE device_id = ANY ($1::text[]) AND status IN ('pending', 'sent') AND next_attempt_at <= now()
    LIMIT $3);

-- wake_downlinks --
-- $1 device ids: on (re)connect everything unacked is due at once
UPDATE device_outbox SET next_attempt_at = now()
WHERE device_id = ANY ($1::text[]) AND status IN ('pending', 'sent');

-- expire_downlinks --
-- $1 at most this many: past their expiry, a payment announcement becomes skipped_late (never played
-- late), the rest expired. Bounded so that a backlog expiring at once is closed over several ticks
-- (nothing past its expiry is delivered meanwhile: open_downlinks_for_devices leaves it out).
UPDATE device_outbox
SET status = CASE WHEN kind = 'payment' THEN 'skipped_late' ELSE 'expired' END
WHERE id IN (SELECT id FROM device_outbox WHERE status IN ('pending', 'sent') AND expires_at <= now() LIMIT $1)
RETURNING id, message_id, device_id, kind, status;

-- acknowledge_downlink --
-- $1 device, $2 message_id, $3 kind or NULL: only the addressed device can ack; a repeated ack changes nothing
UPDATE device_outbox SET status = 'acked', acked_at = now()
WHERE device_id = $1 AND message_id = $2 AND ($3::text IS NULL OR kind = $3) AND status IN ('pending', 'sent')
RETURNING id, message_id, kind, transaction_id, payload, created_at, acked_at;

-- downlinks_for_device --
-- $1 device, $2 kind or NULL, $3 cursor, $4 limit+1
SELECT id, message_id, device_id, kind, topic, payload, status, transaction_id, attempts,
       created_at, sent_at, acked_at, expires_at, counter IS NOT NULL AS signed, counter
FROM device_outbox
WHERE device_id = $1 AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR id < $3)
ORDER BY id DESC
LIMIT $4;

-- payment_notification_for_transaction --
-- $1 transaction id: its latest announcement
SELECT id, message_id, device_id, kind, status, attempts, created_at, sent_at, acked_at, expires_at
FROM device_outbox WHERE transaction_id = $1 AND kind = 'payment'
ORDER BY id DESC LIMIT 1;

-- unacked_downlink_counts --
-- $1 device ids: downlinks waiting for the device's ack, per device (a QR reply expects none)
SELECT device_id, count(*) AS pending FROM device_outbox
WHERE device_id = ANY ($1::text[]) AND status IN ('pending', 'sent') AND kind <> 'dynamic_qr_response'
GROUP BY device_id;

-- postpone_downlinks --
-- $1 message ids, $2 seconds: open rows not to hand over before then (the device's session holds the
-- message or has no room for more, or the device PUBACKed it and its own ack is on the way); attempts unchanged
UPDATE device_outbox SET next_attempt_at = now() + make_interval(secs => $2::float8)
WHERE message_id = ANY ($1::text[]) AND status IN ('pending', 'sent');
