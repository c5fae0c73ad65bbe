-- Names for the console, and the indexes its search uses (docs/console.md "Search").
--
-- device_details gains the names of what a device is bound to, so the device list and detail
-- answer with the merchant's name and the terminal's code in the same read (no lookup per row).
-- CREATE OR REPLACE VIEW may only append columns: the earlier ones stay as 020 made them.
CREATE OR REPLACE VIEW device_details AS
SELECT d.id, d.serial_number, d.model_id, d.status, d.role, d.terminal_id, t.merchant_id, t.outlet_id,
       d.bound_at, d.credential_fingerprint, d.credential_rotated_at, d.disabled_reason,
       d.online, d.last_seen_at, d.last_heartbeat_at, d.battery_level, d.network_strength,
       d.firmware_version, d.heartbeat, d.acl_denials, d.last_acl_denial_at,
       d.created_at, d.updated_at, d.retired_at,
       t.terminal_code, t.name AS terminal_name, o.name AS outlet_name, m.name AS merchant_name
FROM devices d
LEFT JOIN terminals t ON t.id = d.terminal_id
LEFT JOIN outlets o ON o.id = t.outlet_id
LEFT JOIN merchants m ON m.id = t.merchant_id;

-- Search by part of a name or serial ("warung", "SB-00"): trigram indexes answer ILIKE '%…%'.
-- Merchant codes, NMIDs, references and RRNs are matched whole through their unique indexes;
-- a terminal code is unique per merchant only, so it gets one of its own.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX merchants_name_trgm ON merchants USING gin (name gin_trgm_ops);
CREATE INDEX devices_serial_trgm ON devices USING gin (serial_number gin_trgm_ops);
CREATE INDEX terminals_code ON terminals (terminal_code);
-- A payment looked up by its amount ("the Rp25.000 one just now"), newest first.
CREATE INDEX transactions_amount ON transactions (amount, id);
