-- register_instance --
-- $1 = instance id, $2 = hostname, $3 = pid, $4 = roles
INSERT INTO runtime_instances (id, hostname, pid, roles) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET last_seen_at = now(), roles = EXCLUDED.roles;

-- touch_instance --
-- $1 = instance id
UPDATE runtime_instances SET last_seen_at = now() WHERE id = $1;

-- remove_instance --
-- $1 = instance id
DELETE FROM runtime_instances WHERE id = $1;

-- live_broker_instances --
-- $1 = seconds a heartbeat stays fresh
SELECT id, hostname, pid, last_seen_at FROM runtime_instances
WHERE 'broker' = ANY (roles) AND last_seen_at > now() - make_interval(secs => $1)
ORDER BY last_seen_at DESC;

-- prune_instances --
-- $1 = seconds after which a silent instance is forgotten
DELETE FROM runtime_instances WHERE last_seen_at < now() - make_interval(secs => $1);
