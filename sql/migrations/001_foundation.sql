-- Processes sharing this database (`serve --only ...` on several machines):
-- each one records its roles and a heartbeat, so any process can tell whether
-- a broker is alive somewhere (GET /health/deep) and operators can see who runs what.
CREATE TABLE runtime_instances (
    id text PRIMARY KEY,
    hostname text NOT NULL,
    pid integer NOT NULL,
    roles text[] NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runtime_instances_last_seen ON runtime_instances (last_seen_at);
