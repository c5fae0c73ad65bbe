-- device_config_ensure --
-- $1 device id, $2 the model's default config: version 0, created on first use
INSERT INTO device_configs (device_id, desired) VALUES ($1, $2)
ON CONFLICT (device_id) DO NOTHING;

-- device_config_lock --
-- $1 device id: the shadow a change or an ack works on, locked for the transaction
SELECT * FROM device_configs WHERE device_id = $1 FOR UPDATE;

-- device_config_by_device --
-- $1 device id
SELECT * FROM device_configs WHERE device_id = $1;

-- device_config_set_desired --
-- $1 device id, $2 overrides, $3 desired, $4 desired version
UPDATE device_configs SET overrides = $2, desired = $3, desired_version = $4, updated_at = now()
WHERE device_id = $1;

-- device_config_set_pushed --
-- $1 device id, $2 message id of the config downlink just queued
UPDATE device_configs SET last_push_message_id = $2, last_push_at = now(), updated_at = now()
WHERE device_id = $1;

-- insert_device_config_version --
-- $1 device id, $2 version, $3 full config, $4 the merge patch that produced it
INSERT INTO device_config_versions (device_id, version, config, changes) VALUES ($1, $2, $3, $4);

-- device_config_version --
-- $1 device id, $2 version
SELECT config FROM device_config_versions WHERE device_id = $1 AND version = $2;

-- device_config_set_reported --
-- $1 device id, $2 config, $3 version: a device only moves forward; an older ack never rolls reported back
UPDATE device_configs SET reported = $2, reported_version = $3, reported_at = now(), updated_at = now()
WHERE device_id = $1 AND (reported_version IS NULL OR reported_version <= $3);

-- device_config_set_rejected --
-- $1 device id, $2 version, $3 reason
UPDATE device_configs
SET last_rejected_version = $2, last_rejection_reason = $3, last_rejected_at = now(), updated_at = now()
WHERE device_id = $1;

-- supersede_config_downlinks --
-- $1 device id: unacked config downlinks are replaced by the one being queued (an offline device gets only the latest)
UPDATE device_outbox SET status = 'superseded'
WHERE device_id = $1 AND kind = 'config' AND status IN ('pending', 'sent');

-- config_downlink_by_message --
-- $1 device id, $2 message id: only the addressed device's own config downlinks, whatever their status
SELECT id, message_id, status, payload FROM device_outbox
WHERE device_id = $1 AND message_id = $2 AND kind = 'config';

-- close_config_downlinks --
-- $1 device id, $2 acked version, $3 'acked' | 'failed', $4 rejection reason: the ack answers its version and older
UPDATE device_outbox SET status = $3, acked_at = now(), last_error = $4
WHERE device_id = $1 AND kind = 'config' AND status IN ('pending', 'sent')
  AND (payload ->> 'version')::int <= $2
RETURNING message_id;

-- downlink_by_message --
-- $1 message id: the delivery state of one downlink
SELECT message_id, status, attempts, created_at, sent_at, acked_at, expires_at, last_error, payload
FROM device_outbox WHERE message_id = $1;

-- insert_device_command --
-- $1 id, $2 device id, $3 type, $4 params, $5 message id of its downlink, $6 created_by
INSERT INTO device_commands (id, device_id, type, params, message_id, created_by)
VALUES ($1, $2, $3, $4, $5, $6);

-- device_command --
-- $1 device id, $2 command id: with its status, read from its downlink (see the view)
SELECT * FROM device_command_details WHERE device_id = $1 AND id = $2;

-- device_command_page --
-- $1 device id, $2 cursor, $3 limit + 1: newest first
SELECT * FROM device_command_details
WHERE device_id = $1 AND ($2::text IS NULL OR id < $2)
ORDER BY id DESC
LIMIT $3;

-- close_command_downlink --
-- $1 device id, $2 message id, $3 'acked' | 'failed', $4 the device's detail: only while open and unexpired
UPDATE device_outbox SET status = $3, acked_at = now(), last_error = $4
WHERE device_id = $1 AND message_id = $2 AND kind = 'command'
  AND status IN ('pending', 'sent') AND expires_at > now()
RETURNING id;

-- device_command_set_result --
-- $1 command id, $2 the device's detail
UPDATE device_commands SET result_detail = $2, completed_at = now() WHERE id = $1;
