-- Several broker nodes on one database (docs/scaling.md).
-- Each process says how long its last heartbeat keeps it alive (three of its own intervals), so nodes
-- judge each other by the sender's interval, not their own.
ALTER TABLE runtime_instances ADD COLUMN alive_until timestamptz NOT NULL DEFAULT now() + interval '30 seconds';
-- Broker nodes look for the online devices of dead nodes on every heartbeat (core/runtime.py):
-- only online rows are of interest, by the node holding them.
CREATE INDEX devices_online_by_instance ON devices (broker_instance_id) WHERE online;
