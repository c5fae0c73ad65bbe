-- Per-device MQTT uplink budgets (core/devices/uplink_budget.py): how many uplinks a device sent past
-- its budget, dropped by the broker, and when the last was; added in coalesced writes (DeviceCounter).
ALTER TABLE devices
    ADD COLUMN uplinks_dropped bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_uplink_drop_at timestamptz;

-- device_details shows them. CREATE OR REPLACE VIEW may only append columns: the earlier ones stay
-- as 120 made them.
CREATE OR REPLACE VIEW device_details AS
SELECT d.id, d.serial_number, d.model_id, d.status, d.role, d.terminal_id, t.merchant_id, t.outlet_id,
       d.bound_at, d.credential_fingerprint, d.credential_rotated_at, d.disabled_reason,
       d.online, d.last_seen_at, d.last_heartbeat_at, d.battery_level, d.network_strength,
       d.firmware_version, d.heartbeat, d.acl_denials, d.last_acl_denial_at,
       d.created_at, d.updated_at, d.retired_at,
       t.terminal_code, t.name AS terminal_name, o.name AS outlet_name, m.name AS merchant_name,
       d.uplinks_dropped, d.last_uplink_drop_at
FROM devices d
LEFT JOIN terminals t ON t.id = d.terminal_id
LEFT JOIN outlets o ON o.id = t.outlet_id
LEFT JOIN merchants m ON m.id = t.merchant_id;
