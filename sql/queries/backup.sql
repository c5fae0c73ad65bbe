-- backup_tables --
-- Every table of the platform's schema whose rows a backup is checked by: what is added later is
-- counted without anyone remembering to. $1 = working-state tables left out (rewritten by any running
-- instance, so a restored copy differs from its dump within seconds).
SELECT c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.relname <> ALL ($1::text[])
ORDER BY c.relname;

-- database_identity --
-- Which database this is: the cluster's system identifier (new for every initdb), the database's
-- name and oid (new for every CREATE DATABASE), and the server's version from server_version_num.
SELECT (SELECT system_identifier FROM pg_control_system())::text AS system_identifier,
       current_database() AS database, d.oid::bigint AS database_oid,
       coalesce(inet_server_addr()::text, current_setting('unix_socket_directories')) AS host,
       current_setting('server_version_num')::int AS server_version_num
FROM pg_database d WHERE d.datname = current_database();

-- other_sessions --
-- Client sessions on this database besides our own: a running platform holds a pool of them.
SELECT count(*)::int FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend';
