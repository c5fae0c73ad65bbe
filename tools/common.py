"""What every subcommand needs: settings, and a migrated database to talk to."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from qris_soundbox.core.config import ConfigError, Settings, load_settings
from qris_soundbox.core.db import Database
from qris_soundbox.core.embedded_pg import EmbeddedPostgres, external_database_configured
from qris_soundbox.core.migrations import migrate


def settings_or_exit(**overrides: object) -> Settings:
    try:
        return load_settings(None, **overrides)
    except ConfigError as exc:
        sys.exit(f"qris-soundbox: {exc}")


@asynccontextmanager
async def open_database(
    settings: Settings, data_dir: Path, *, pool_size: int = 10, migrate_first: bool = True
) -> AsyncIterator[Database]:
    """Connect to DATABASE_URL / PG*, or start the embedded server in ``data_dir``;
    apply migrations (unless ``migrate_first`` is off, as for a restore);
    stop the embedded server again on exit."""
    embedded = None
    dsn = settings.database_url
    if not external_database_configured(settings.database_url):
        embedded = EmbeddedPostgres(data_dir)
        dsn = await embedded.start()
    # The migration lock is a session lock: it needs the direct connection (DATABASE_LISTEN_URL) when
    # DATABASE_URL goes through a transaction-mode pooler.
    direct = (settings.database_listen_url or dsn) if embedded is None else dsn
    try:
        if migrate_first:
            conn = await asyncpg.connect(direct)
            try:
                await migrate(conn)
            finally:
                await conn.close()
        db = await Database.connect(
            dsn, max_size=pool_size, listen_dsn=direct, statement_cache_size=settings.database_statement_cache_size
        )
        try:
            yield db
        finally:
            await db.close()
    finally:
        if embedded is not None:
            await embedded.stop()
