-- A device model names the wire dialect its devices speak (SPEC §17, docs/dialects.md). The dialects
-- themselves are data files the broker loads (acl/dialects/*.yaml); 'native' is the platform's own.
ALTER TABLE device_models ADD COLUMN dialect text NOT NULL DEFAULT 'native'
    CHECK (dialect ~ '^[a-z0-9][a-z0-9-]{0,39}$');

-- The Q161 Pro soundbox: a screen for its dynamic QR, mp3 clips for what it says.
INSERT INTO device_models (id, name, vendor, builtin, dialect, capabilities) VALUES
('q161-pro', 'Q161 Pro soundbox', 'q161', true, 'q161-pro', '{
    "screen": true, "dynamic_qr": true, "languages": ["id", "en"],
    "announcement_format": "clips", "max_text_length": 200,
    "volume_min": 0, "volume_max": 100, "commands": []}');
