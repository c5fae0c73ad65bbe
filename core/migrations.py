"""Numbered plain-SQL migrations (``sql/migrations/NNN_description.sql``).

Each file runs once, in its own transaction, and is recorded in
``schema_migrations`` as the earlier implementation did. An advisory lock keeps
two processes sharing one database from migrating at the same time.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

from qris_soundbox.core.db import SQL_DIR, Connection

log = logging.getLogger(__name__)
MIGRATIONS_DIR = SQL_DIR / "migrations"
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 727_001  # arbitrary, constant: the advisory lock id for migrations


class Migration:
    def __init__(self, path: Path) -> None:
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name!r} is not named NNN_description.sql")
        self.version = match.group(1)
        self.name = match.group(2)
        self.sql = path.read_text()
        self.checksum = hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = [Migration(p) for p in sorted(directory.glob("*.sql"))]
    versions = [m.version for m in migrations]
    if len(versions) != len(set(versions)):
        raise ValueError(f"two migrations share a number in {directory}")
    return migrations


async def migrate(conn: Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; returns the versions applied (empty: a no-op)."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version text PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = {
            r["version"]: r["checksum"] for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        for migration in discover(directory):
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    log.warning("applied migration changed on disk", extra={"migration": migration.version})
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("migration applied", extra={"migration": f"{migration.version}_{migration.name}"})
            applied_now.append(migration.version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now
