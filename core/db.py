"""PostgreSQL access: the pool, named SQL queries and explicit transactions.

SQL lives in ``sql/queries/<domain>.sql`` as named blocks (procrastinate style)::

    -- merchant_by_id --
    -- $1 = merchant id
    SELECT ... WHERE id = $1;

They are loaded once into ``Database.q`` and run through the pool or a
connection; no ORM, no SQL strings scattered through services.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

import qris_soundbox.sql as sql_package

SQL_DIR = Path(sql_package.__file__).parent
_QUERY_HEADER = re.compile(r"^--\s*([a-z][a-z0-9_]*)\s*--\s*$", re.MULTILINE)


def load_queries(directory: Path = SQL_DIR / "queries") -> dict[str, str]:
    """Read every named block of every ``*.sql`` file; a name may appear once."""
    queries: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        text = path.read_text()
        headers = list(_QUERY_HEADER.finditer(text))
        for index, header in enumerate(headers):
            end = headers[index + 1].start() if index + 1 < len(headers) else len(text)
            name = header.group(1)
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice (again in {path.name})")
            queries[name] = text[header.end() : end].strip()
    return queries


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSON crosses the database boundary as msgspec-encoded bytes both ways.
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename,
            schema="pg_catalog",
            encoder=lambda value: msgspec.json.encode(value).decode(),
            decoder=msgspec.json.decode,
        )


class Database:
    """The asyncpg pool plus the named queries."""

    def __init__(self, pool: asyncpg.Pool, queries: dict[str, str], dsn: str | None = None) -> None:
        self.pool = pool
        self.q = queries
        self.dsn = dsn  # None: the libpq PG* variables

    @classmethod
    async def connect(cls, dsn: str | None, *, min_size: int = 2, max_size: int = 10) -> Database:
        # dsn None: asyncpg reads the libpq PG* variables, as the seed did.
        pool = await asyncpg.create_pool(
            dsn, min_size=min(min_size, max_size), max_size=max_size, init=_init_connection
        )
        return cls(pool, load_queries(), dsn)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """One short explicit transaction; services receive the connection."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def fetch(self, name: str, *args: Any) -> list[asyncpg.Record]:
        return await self.pool.fetch(self.q[name], *args)

    async def fetchrow(self, name: str, *args: Any) -> asyncpg.Record | None:
        return await self.pool.fetchrow(self.q[name], *args)

    async def fetchval(self, name: str, *args: Any) -> Any:
        return await self.pool.fetchval(self.q[name], *args)

    async def execute(self, name: str, *args: Any) -> str:
        return await self.pool.execute(self.q[name], *args)
