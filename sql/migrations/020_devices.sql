-- Soundbox devices: models with capabilities, the registry, MQTT credentials,
-- presence and last heartbeat, ACL denial counters, and the per-device MQTT trace.

CREATE TABLE device_models (
    id text PRIMARY KEY,                       -- a slug such as 'generic-audio'; what POST /admin/devices names
    name text NOT NULL,
    vendor text,
    capabilities jsonb NOT NULL,               -- core/devices/schemas.Capabilities
    builtin boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO device_models (id, name, vendor, builtin, capabilities) VALUES
('generic-audio', 'Generic audio soundbox', 'generic', true, '{
    "screen": false, "dynamic_qr": false, "languages": ["id", "en"],
    "announcement_format": "clips", "max_text_length": 200,
    "volume_min": 0, "volume_max": 100,
    "commands": ["reboot", "play_test_sound", "set_volume", "ota_update", "sync_time"]}'),
('generic-screen', 'Generic soundbox with screen', 'generic', true, '{
    "screen": true, "dynamic_qr": true, "languages": ["id", "en"],
    "announcement_format": "text", "max_text_length": 200,
    "volume_min": 0, "volume_max": 100,
    "commands": ["reboot", "play_test_sound", "set_volume", "ota_update", "sync_time"]}');

CREATE TABLE devices (
    id text PRIMARY KEY,                       -- also the MQTT username and client id
    serial_number text NOT NULL UNIQUE,
    model_id text NOT NULL REFERENCES device_models (id),
    status text NOT NULL DEFAULT 'registered'
        CHECK (status IN ('registered', 'active', 'disabled', 'retired')),
    -- What the device is for at its terminal; a terminal has at most one device per role.
    role text NOT NULL DEFAULT 'soundbox' CHECK (role IN ('soundbox')),
    terminal_id text REFERENCES terminals (id),
    bound_at timestamptz,
    -- MQTT/HTTP credential: only an argon2id hash and a fingerprint, never the secret.
    credential_hash text,
    credential_fingerprint text,
    credential_rotated_at timestamptz,
    disabled_reason text,
    -- Presence (broker connect/disconnect) and the last heartbeat.
    online boolean NOT NULL DEFAULT false,
    last_seen_at timestamptz,
    presence_changed_at timestamptz,
    broker_instance_id text,
    last_heartbeat_at timestamptz,
    battery_level integer,
    network_strength integer,
    firmware_version text,
    heartbeat jsonb,
    acl_denials bigint NOT NULL DEFAULT 0,
    last_acl_denial_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz,
    CHECK (status <> 'retired' OR terminal_id IS NULL)
);
CREATE UNIQUE INDEX devices_one_per_terminal_role ON devices (terminal_id, role) WHERE terminal_id IS NOT NULL;
CREATE INDEX devices_status ON devices (status, id);
CREATE INDEX devices_model ON devices (model_id, id);
CREATE INDEX devices_online ON devices (online, id) WHERE online;

-- Every uplink and downlink per device, payload truncated; pruned by job devices.prune_trace.
CREATE TABLE device_mqtt_messages (
    id text PRIMARY KEY,
    device_id text NOT NULL,                   -- no FK: tracing must never fail a delivery
    direction text NOT NULL CHECK (direction IN ('uplink', 'downlink')),
    topic text NOT NULL,
    qos smallint,
    message_id text,
    payload text NOT NULL,
    payload_bytes integer NOT NULL,
    truncated boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_mqtt_messages_device ON device_mqtt_messages (device_id, id);
CREATE INDEX device_mqtt_messages_time ON device_mqtt_messages (created_at);

-- A device as the registry shows it: never the credential hash; merchant and outlet through its terminal.
CREATE VIEW device_details AS
SELECT d.id, d.serial_number, d.model_id, d.status, d.role, d.terminal_id, t.merchant_id, t.outlet_id,
       d.bound_at, d.credential_fingerprint, d.credential_rotated_at, d.disabled_reason,
       d.online, d.last_seen_at, d.last_heartbeat_at, d.battery_level, d.network_strength,
       d.firmware_version, d.heartbeat, d.acl_denials, d.last_acl_denial_at,
       d.created_at, d.updated_at, d.retired_at
FROM devices d LEFT JOIN terminals t ON t.id = d.terminal_id;
