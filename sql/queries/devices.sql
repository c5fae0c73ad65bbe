-- device_model_list --
-- every model, built-in ones first
SELECT id, name, vendor, capabilities, builtin, dialect, created_at FROM device_models ORDER BY builtin DESC, id;

-- device_model_by_id --
-- $1 = model id
SELECT id, name, vendor, capabilities, builtin, dialect, created_at FROM device_models WHERE id = $1;

-- insert_device_model --
-- $1 id, $2 name, $3 vendor, $4 capabilities; no row back when the id is taken
INSERT INTO device_models (id, name, vendor, capabilities) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO NOTHING
RETURNING id, name, vendor, capabilities, builtin, dialect, created_at;

-- insert_device --
-- $1 id, $2 serial_number, $3 model_id; no row back when the serial number is taken
INSERT INTO devices (id, serial_number, model_id) VALUES ($1, $2, $3)
ON CONFLICT (serial_number) DO NOTHING
RETURNING id;

-- device_by_id --
-- $1 = device id; the device with its terminal's merchant and outlet
SELECT * FROM device_details WHERE id = $1;

-- device_page --
-- $1 cursor, $2 limit + 1, $3 status, $4 model_id, $5 terminal_id, $6 merchant_id, $7 online,
-- $8 config drift (desired version not yet reported; no config row = version 0, no drift),
-- $9 a serial number's part, as an ILIKE pattern (NULL = any filter)
SELECT * FROM device_details d
WHERE ($1::text IS NULL OR id < $1)
  AND ($3::text IS NULL OR status = $3)
  AND ($4::text IS NULL OR model_id = $4)
  AND ($5::text IS NULL OR terminal_id = $5)
  AND ($6::text IS NULL OR merchant_id = $6)
  AND ($7::boolean IS NULL OR online = $7)
  AND ($8::boolean IS NULL OR $8 = EXISTS (
      SELECT 1 FROM device_configs c
      WHERE c.device_id = d.id AND c.desired_version <> COALESCE(c.reported_version, 0)))
  -- The matching ids first (the trigram index, once per statement): as a plain filter the planner
  -- walked the whole list newest first looking for them (37 ms at 10,000 devices).
  AND ($9::text IS NULL OR id = ANY (ARRAY(SELECT s.id FROM devices s WHERE s.serial_number ILIKE $9)))
ORDER BY id DESC
LIMIT $2;

-- device_id_by_serial --
-- $1 = serial number
SELECT id FROM devices WHERE serial_number = $1;

-- device_lock --
-- $1 = device id; the row a state change works on, locked for the transaction
SELECT id, status, role, terminal_id, credential_fingerprint FROM devices WHERE id = $1 FOR UPDATE;

-- device_bind_target_terminal --
-- $1 = terminal id
SELECT id, merchant_id, outlet_id, status FROM terminals WHERE id = $1;

-- terminal_ids_by_code --
-- $1 = terminal code (unique per merchant): at most two ids, enough to tell one from several
SELECT id FROM terminals WHERE terminal_code = $1 LIMIT 2;

-- device_bound_at_terminal --
-- $1 terminal id, $2 role
SELECT id FROM devices WHERE terminal_id = $1 AND role = $2;

-- device_bind --
-- $1 device id, $2 terminal id
UPDATE devices SET terminal_id = $2, bound_at = now(), updated_at = now() WHERE id = $1;

-- device_unbind --
-- $1 device id
UPDATE devices SET terminal_id = NULL, bound_at = NULL, updated_at = now() WHERE id = $1;

-- device_set_status --
-- $1 device id, $2 status, $3 disabled_reason
UPDATE devices SET status = $2, disabled_reason = $3, updated_at = now()
WHERE id = $1;

-- device_retire --
-- $1 device id; unbound, credential destroyed, never again usable
UPDATE devices SET status = 'retired', terminal_id = NULL, bound_at = NULL, credential_hash = NULL,
       credential_fingerprint = NULL, retired_at = now(), updated_at = now()
WHERE id = $1;

-- device_set_credential --
-- $1 device id, $2 argon2id hash, $3 fingerprint; a registered device becomes active
UPDATE devices SET credential_hash = $2, credential_fingerprint = $3, credential_rotated_at = now(),
       status = CASE WHEN status = 'registered' THEN 'active' ELSE status END, updated_at = now()
WHERE id = $1
RETURNING status, credential_rotated_at;

-- device_credential --
-- $1 device id; what authentication needs
SELECT id, status, credential_hash, credential_fingerprint FROM devices WHERE id = $1;

-- device_session_states --
-- $1 device ids: what a broker node re-checks of its sessions after it may have missed notifications
SELECT id, status, credential_fingerprint, online, broker_instance_id, presence_changed_at
FROM devices WHERE id = ANY ($1::text[]);

-- device_credentials --
-- $1 device ids; what authentication needs, for every connect waiting at once
SELECT d.id, d.status, d.credential_hash, d.credential_fingerprint, m.dialect
FROM devices d JOIN device_models m ON m.id = d.model_id WHERE d.id = ANY ($1::text[]);

-- device_notify_change --
-- $1 = JSON payload for the broker process(es): {"device_id", "fingerprint", "status"}
SELECT pg_notify('device_credentials', $1);

-- device_presence --
-- $1 device ids, $2 online, $3 event times (parallel arrays, one entry per device), $4 broker instance id.
-- An older event never overwrites a newer one, but for this: a live session here is recorded over a newer
-- offline (the newer session elsewhere has ended, or its node was declared dead), so the registry never
-- shows offline a device that has a live copy. An offline event from one node never overwrites the device's
-- session on another (the node a device moved away from closes its copy after the move).
-- One live session per client id across nodes, whichever node's batch commits first (NOTIFY
-- device_sessions, heard by every broker node, closes the copies that connected before the time it names):
-- - a device now online here that was online on another node: that node's copy is the older one;
-- - an online event of this node older than a live session another node recorded (the newer node's
--   batch committed first): this node's copy is the older one.
-- The device rows are read locked, in id order: FOR UPDATE returns a row as another node's batch
-- committed it even after this statement's snapshot was taken (a plain read would return the older
-- row, and both nodes would miss each other), and two nodes' overlapping batches take their locks in
-- one order instead of deadlocking.
WITH events AS (
    SELECT c.id, c.online, c.at FROM unnest($1::text[], $2::boolean[], $3::timestamptz[]) AS c (id, online, at)
), before AS (
    SELECT d.id, d.online, d.broker_instance_id, d.presence_changed_at
    FROM devices d WHERE d.id IN (SELECT id FROM events)
    ORDER BY d.id
    FOR UPDATE
), changed AS (
    UPDATE devices d SET online = e.online, last_seen_at = e.at, presence_changed_at = e.at,
        broker_instance_id = CASE WHEN e.online THEN $4 ELSE d.broker_instance_id END
    FROM events e JOIN before b ON b.id = e.id
    WHERE d.id = e.id AND (b.presence_changed_at IS NULL OR b.presence_changed_at <= e.at OR (e.online AND NOT b.online))
      AND (e.online OR b.broker_instance_id IS NULL OR b.broker_instance_id = $4)
    RETURNING d.id, e.online, e.at, b.online AS was_online, b.broker_instance_id AS was_on
)
SELECT pg_notify('device_sessions', json_build_object('device_id', id, 'instance_id', $4::text, 'connected_at', at)::text)
FROM changed
WHERE online AND was_online AND was_on IS DISTINCT FROM $4
UNION ALL
SELECT pg_notify('device_sessions', json_build_object(
    'device_id', b.id, 'instance_id', b.broker_instance_id, 'connected_at', b.presence_changed_at)::text)
FROM events e JOIN before b ON b.id = e.id
WHERE e.online AND b.online AND b.presence_changed_at > e.at AND b.broker_instance_id <> $4;

-- device_presence_release_instance --
-- $1 broker instance id: its devices are offline once it stops
UPDATE devices SET online = false, presence_changed_at = now()
WHERE online AND broker_instance_id = $1;

-- device_presence_release_stale --
-- Devices of brokers that died (their last heartbeat has run out) are offline.
UPDATE devices SET online = false, presence_changed_at = now()
WHERE online AND (broker_instance_id IS NULL OR broker_instance_id NOT IN (
    SELECT id FROM runtime_instances WHERE alive_until > now()))
RETURNING id;

-- device_heartbeat_states --
-- $1 device ids: what the answer to an HTTP heartbeat needs, for every heartbeat waiting at once: the
-- health inputs and the downlinks waiting for the device's ack (counted as unacked_downlink_counts counts
-- them). No row for a device that does not exist or whose heartbeats are not recorded (device_record_heartbeats).
SELECT d.id, d.status, d.credential_fingerprint IS NOT NULL AS has_credential, d.online, d.last_seen_at,
       d.last_heartbeat_at, d.battery_level, d.network_strength,
       (SELECT count(*) FROM device_outbox o
        WHERE o.device_id = d.id AND o.status IN ('pending', 'sent') AND o.kind <> 'dynamic_qr_response') AS pending_acks
FROM devices d
WHERE d.id = ANY ($1::text[]) AND d.status IN ('registered', 'active');

-- device_record_heartbeats --
-- Parallel arrays, one entry per device: $1 ids, $2 when received, $3 battery_level, $4 network_strength,
-- $5 firmware_version, $6 heartbeat json (a process's MQTT and HTTP heartbeats, written together)
UPDATE devices d SET last_heartbeat_at = c.at, last_seen_at = GREATEST(d.last_seen_at, c.at),
       battery_level = COALESCE(c.battery_level, d.battery_level),
       network_strength = COALESCE(c.network_strength, d.network_strength),
       firmware_version = COALESCE(c.firmware_version, d.firmware_version), heartbeat = c.heartbeat
FROM unnest($1::text[], $2::timestamptz[], $3::integer[], $4::integer[], $5::text[], $6::jsonb[])
    AS c (id, at, battery_level, network_strength, firmware_version, heartbeat)
WHERE d.id = c.id AND d.status IN ('registered', 'active');

-- device_add_acl_denials --
-- $1 device ids, $2 counts (parallel arrays)
UPDATE devices d SET acl_denials = d.acl_denials + c.n, last_acl_denial_at = now()
FROM unnest($1::text[], $2::bigint[]) AS c (id, n)
WHERE d.id = c.id;

-- device_add_uplinks_dropped --
-- $1 device ids, $2 counts (parallel arrays): uplinks the broker dropped past the device's budget
UPDATE devices d SET uplinks_dropped = d.uplinks_dropped + c.n, last_uplink_drop_at = now()
FROM unnest($1::text[], $2::bigint[]) AS c (id, n)
WHERE d.id = c.id;

-- insert_device_mqtt_messages --
-- Parallel arrays, one entry per message: $1 ids, $2 device ids, $3 directions, $4 topics, $5 qos, $6 message ids,
-- $7 payloads, $8 payload bytes, $9 truncated, $10 when it was received (a broker node's uplinks, written together)
INSERT INTO device_mqtt_messages (id, device_id, direction, topic, qos, message_id, payload, payload_bytes, truncated, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::smallint[], $6::text[], $7::text[],
                     $8::integer[], $9::boolean[], $10::timestamptz[]);

-- device_mqtt_message_page --
-- $1 device id, $2 cursor, $3 limit + 1, $4 direction (NULL = both)
SELECT id, device_id, direction, topic, qos, message_id, payload, payload_bytes, truncated, created_at
FROM device_mqtt_messages
WHERE device_id = $1 AND ($2::text IS NULL OR id < $2) AND ($4::text IS NULL OR direction = $4)
ORDER BY id DESC
LIMIT $3;

-- prune_device_mqtt_messages --
-- $1 = days of trace to keep
DELETE FROM device_mqtt_messages WHERE created_at < now() - make_interval(days => $1);
