-- Several broker nodes on one database (docs/scaling.md).
-- Each process says how long its last heartbeat keeps it alive (three of its own intervals), so nodes
-- judge each other by the sender's interval, not their own.
ALTER TABLE runtime_instances ADD COLUMN alive_until timestamptz NOT NULL DEFAULT now() + interval '30 seconds';
-- Broker nodes look for the online devices of dead nodes on every heartbeat (core/runtime.py):
-- only online rows are of interest, by the node holding them.
CREATE INDEX devices_online_by_instance ON devices (broker_instance_id) WHERE online;
-- RATE_LIMIT_STORE=postgres: one limit across every API node (core/ratelimit.py). Unlogged: counts
-- are not worth WAL, and a PostgreSQL crash forgetting them is harmless.
CREATE UNLOGGED TABLE rate_limit_counts (
    bucket text NOT NULL,
    key text NOT NULL,
    window_start timestamptz NOT NULL,
    window_s float8 NOT NULL,
    hits integer NOT NULL,
    PRIMARY KEY (bucket, key)
);
