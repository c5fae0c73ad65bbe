-- Device configuration as a shadow (desired vs reported, versioned) and remote
-- commands. Both are delivered through device_outbox (kinds 'config', 'command').

-- One row per device whose configuration was ever changed, pushed or reported.
-- No row means version 0: the model's defaults (core/devices/config.py), which
-- every device is assumed to run out of the box.
CREATE TABLE device_configs (
    device_id text PRIMARY KEY REFERENCES devices (id),
    overrides jsonb NOT NULL DEFAULT '{}'::jsonb,   -- what operators set (merge-patched)
    desired jsonb NOT NULL,                         -- defaults + overrides: the full config of desired_version
    desired_version integer NOT NULL DEFAULT 0 CHECK (desired_version >= 0),
    reported jsonb,                                 -- the config of reported_version (as the platform sent it)
    reported_version integer CHECK (reported_version >= 0),
    reported_at timestamptz,
    last_push_message_id text,                      -- the latest config downlink (device_outbox.message_id)
    last_push_at timestamptz,
    last_rejected_version integer,
    last_rejection_reason text,
    last_rejected_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- GET /admin/devices?drift=true
CREATE INDEX device_configs_drift ON device_configs (device_id)
    WHERE desired_version <> COALESCE(reported_version, 0);

-- Every desired version ever issued: an ack names a version, and the platform
-- records as reported the exact config it sent for that version.
CREATE TABLE device_config_versions (
    device_id text NOT NULL REFERENCES devices (id),
    version integer NOT NULL CHECK (version > 0),
    config jsonb NOT NULL,
    changes jsonb NOT NULL,                         -- the merge patch that produced it
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, version)
);
CREATE TRIGGER device_config_versions_append_only BEFORE UPDATE OR DELETE ON device_config_versions
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Remote commands. Their delivery status (queued, sent, acked, failed, expired)
-- is the status of their outbox row — the one source of truth — so the row must
-- outlive the command: the foreign key refuses pruning an outbox row a command uses.
CREATE TABLE device_commands (
    id text PRIMARY KEY,
    device_id text NOT NULL REFERENCES devices (id),
    type text NOT NULL CHECK (type IN ('reboot', 'play_test_sound', 'set_volume', 'ota_update', 'sync_time')),
    params jsonb NOT NULL DEFAULT '{}'::jsonb,
    message_id text NOT NULL UNIQUE REFERENCES device_outbox (message_id),
    result_detail text,                             -- the device's detail from its ack
    completed_at timestamptz,                       -- when the device acked (succeeded or failed)
    created_by text,                                -- the admin principal id
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_commands_device ON device_commands (device_id, id);

-- A command with its status read from its downlink: pending reads queued, and a row
-- past its expiry reads expired even before the publisher's sweep has marked it.
CREATE VIEW device_command_details AS
SELECT c.id, c.device_id, c.type, c.params, c.message_id, c.result_detail, c.completed_at, c.created_by,
       c.created_at, o.attempts, o.sent_at, o.expires_at,
       CASE WHEN o.status IN ('pending', 'sent') AND o.expires_at <= now() THEN 'expired'
            WHEN o.status = 'pending' THEN 'queued'
            ELSE o.status END AS status
FROM device_commands c JOIN device_outbox o ON o.message_id = c.message_id;
