-- register_instance --
-- $1 = instance id, $2 = hostname, $3 = pid, $4 = roles, $5 = seconds this heartbeat keeps it alive
INSERT INTO runtime_instances (id, hostname, pid, roles, alive_until)
VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::float8))
ON CONFLICT (id) DO UPDATE SET last_seen_at = now(), roles = EXCLUDED.roles, alive_until = EXCLUDED.alive_until;

-- touch_instance --
-- $1 = instance id, $2 = seconds this heartbeat keeps it alive
UPDATE runtime_instances SET last_seen_at = now(), alive_until = now() + make_interval(secs => $2::float8)
WHERE id = $1;

-- remove_instance --
-- $1 = instance id
DELETE FROM runtime_instances WHERE id = $1;

-- live_broker_instances --
SELECT id, hostname, pid, last_seen_at FROM runtime_instances
WHERE 'broker' = ANY (roles) AND alive_until > now()
ORDER BY last_seen_at DESC;

-- prune_instances --
-- $1 = seconds after which a silent instance is forgotten
DELETE FROM runtime_instances WHERE last_seen_at < now() - make_interval(secs => $1);

-- server_version_num --
-- The server's version as the server counts it (180006 = 18.6); asyncpg's parse of server_version can
-- differ (it read 18.0 where the manifest of a backup read 18.6).
SELECT current_setting('server_version_num')::int;
