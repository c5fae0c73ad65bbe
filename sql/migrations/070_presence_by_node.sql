-- Broker nodes look for the online devices of dead nodes on every heartbeat (core/runtime.py):
-- only online rows are of interest, by the node holding them.
CREATE INDEX devices_online_by_instance ON devices (broker_instance_id) WHERE online;
