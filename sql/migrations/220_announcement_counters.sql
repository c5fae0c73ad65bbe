-- Signed announcements (SPEC §17, docs/announcement-signing.md): each signed downlink carries a
-- per-device counter that strictly increases, so a device refuses a replayed announcement. The
-- counter is allocated here, in the statement that queues the row (no round trip of its own), under
-- the device's counter row lock: two announcements for one device get their counters in commit order.
CREATE TABLE device_announcement_counters (
    device_id text PRIMARY KEY REFERENCES devices (id),
    last_counter bigint NOT NULL CHECK (last_counter > 0)
);

ALTER TABLE device_outbox ADD COLUMN counter bigint CHECK (counter > 0);

-- Rows still open at the upgrade get theirs, so they are delivered signed.
WITH numbered AS (
    SELECT id, device_id, row_number() OVER (PARTITION BY device_id ORDER BY id) AS n
    FROM device_outbox WHERE kind = 'payment' AND status IN ('pending', 'sent')
)
UPDATE device_outbox o SET counter = numbered.n FROM numbered WHERE o.id = numbered.id;
INSERT INTO device_announcement_counters (device_id, last_counter)
SELECT device_id, max(counter) FROM device_outbox WHERE counter IS NOT NULL GROUP BY device_id;

-- Redefined from sql/migrations/080: p.signed (a core.outbox.NewDownlink of a kind in
-- core/announcement_signing.SIGNED_KINDS) takes the device's next counter.
CREATE OR REPLACE FUNCTION enqueue_downlink(p jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_counter bigint;
BEGIN
    IF (p->>'signed')::boolean THEN
        INSERT INTO device_announcement_counters AS c (device_id, last_counter) VALUES (p->>'device_id', 1)
        ON CONFLICT (device_id) DO UPDATE SET last_counter = c.last_counter + 1
        RETURNING last_counter INTO v_counter;
    END IF;
    INSERT INTO device_outbox (id, message_id, device_id, kind, topic, payload, expires_at, transaction_id, counter)
    SELECT id, message_id, device_id, kind, topic, payload, expires_at, transaction_id, v_counter
    FROM jsonb_populate_record(NULL::device_outbox, p);
    PERFORM pg_notify('device_outbox', p->>'device_id');
END
$$;
