-- demo_seed_lock --
-- Serialises concurrent seeds (two `serve --demo` processes, or a POST /admin/seed
-- racing the CLI) for the rest of the transaction.
SELECT pg_advisory_xact_lock(727002);
