-- A dynamic-QR reply expects no application ack: once handed to the device's live
-- session (QoS 1) it is `delivered` and never re-sent, unlike payments, config and
-- commands, which stay `sent` until the device acknowledges them.
ALTER TABLE device_outbox DROP CONSTRAINT device_outbox_status_check;
ALTER TABLE device_outbox ADD CONSTRAINT device_outbox_status_check
    CHECK (status IN ('pending', 'sent', 'delivered', 'acked', 'failed', 'expired', 'skipped_late', 'superseded'));
