"""PostgreSQL access: the pool, named SQL queries and explicit transactions.

SQL lives in ``sql/queries/<domain>.sql`` as named blocks (procrastinate style)::

    -- merchant_by_id --
    -- $1 = merchant id
    SELECT ... WHERE id = $1;

They are loaded once, at import, into ``QUERIES`` (a read-only mapping of name →
SQL, as procrastinate keeps its queries): services take only the connection they
run on and write ``conn.fetchrow(QUERIES["merchant_by_id"], merchant_id)``; no ORM,
no SQL strings scattered through services, no database object passed around just
to reach the text of a query.

Errors: the pool reconnects by itself once PostgreSQL is back (a connection the
server closed is replaced on the next acquire), so an outage needs no restart.
While it lasts, opening a connection raises ``DatabaseUnreachable``;
``error_for_database_failure`` tells callers which asyncpg errors mean "the
database is unavailable" and which mean "this input cannot be stored", so the
HTTP API answers 503 or 400 instead of 500.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeAlias

import asyncpg
import asyncpg.pool
import msgspec

import qris_soundbox.sql as sql_package
from qris_soundbox.core.errors import DomainError, Unavailable, ValidationFailed

SQL_DIR = Path(sql_package.__file__).parent
_QUERY_HEADER = re.compile(r"^--\s*([a-z][a-z0-9_]*)\s*--\s*$", re.MULTILINE)
# A new connection gives up after this long (asyncpg's default is 60 s): during an
# outage a request answers 503 within seconds instead of hanging.
CONNECT_TIMEOUT_S = 10
# What a 503 tells the client to wait before trying again.
RETRY_AFTER_S = 5

# Errors that say the server is gone, going, refusing or out of resources, not
# that the query or its input is wrong: connection exceptions (08), operator
# intervention (57: shutdown, cannot connect now, query cancelled) and
# insufficient resources (53: too many connections, disk full, out of memory).
# And asyncpg's InternalClientError: a connection the server has just cut, used
# before asyncpg saw the cut, fails with "cannot switch to state ...; another
# operation is in progress" (seen when every session was terminated).
_SERVER_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.InternalClientError,
)
# Data exceptions (22) a value from outside can cause, by what the client should fix.
_VALUE_REFUSED = {
    asyncpg.CharacterNotInRepertoireError: "text contains a character PostgreSQL cannot store (such as U+0000)",
    asyncpg.UntranslatableCharacterError: "text contains a character PostgreSQL cannot store (such as U+0000)",
    asyncpg.NumericValueOutOfRangeError: "a number is out of range",
    asyncpg.StringDataRightTruncationError: "a text value is too long",
    asyncpg.InvalidTextRepresentationError: "a value has the wrong format",
    asyncpg.InvalidDatetimeFormatError: "a date or time has the wrong format",
    asyncpg.DatetimeFieldOverflowError: "a date or time is out of range",
    asyncpg.InvalidEscapeSequenceError: "a search pattern has an invalid escape",
    # 54000: a value too large for an index row, or nesting too deep for the server.
    asyncpg.ProgramLimitExceededError: "a value is too large",
}


class DatabaseUnreachable(ConnectionError):
    """A new connection to PostgreSQL failed: refused, timed out, shutting down, too many connections.

    An ``OSError``, so code that already treats ``OSError`` as "database gone" keeps doing so.
    """


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


log = logging.getLogger(__name__)
QUERIES: Mapping[str, str] = MappingProxyType(load_queries())

STATEMENT_CACHE_SIZE = 512
LISTEN_POOL_SIZE = 3
# What services run on: a connection of their own, or one lent by the pool (a proxy of it).
Connection: TypeAlias = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


async def fetch_one(conn: Connection, name: str, *args: Any) -> asyncpg.Record:
    """A query that always returns a row: an aggregate, an INSERT/UPDATE ... RETURNING of a row the
    caller holds locked, a row whose existence the transaction has just established."""
    row = await conn.fetchrow(QUERIES[name], *args)
    if row is None:
        raise RuntimeError(f"query {name!r} returned no row")
    return row


def postgresql_version(server_version_num: int) -> str:
    """``18.6`` for ``server_version_num`` 180006 (major × 10000 + minor since PostgreSQL 10): the one
    spelling of the server's version, in ``/admin/health/deep`` as in a backup's manifest."""
    return f"{server_version_num // 10000}.{server_version_num % 10000}"


async def _connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    """The pool's way to open a connection: any failure to open one is ``DatabaseUnreachable``."""
    try:
        return await asyncpg.connect(*args, **kwargs)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
        raise DatabaseUnreachable(f"cannot connect to PostgreSQL: {type(exc).__name__}") from exc


def error_for_database_failure(exc: BaseException) -> DomainError | None:
    """The domain error an asyncpg failure stands for, or None when it is a fault of ours (a bug).

    - the database cannot be reached or is shutting down → ``Unavailable`` (503, Retry-After);
    - the database refused a value that came from outside (U+0000 in text, a number
      beyond bigint, a string too long) → ``ValidationFailed`` (400).
    """
    if isinstance(exc, (DatabaseUnreachable, *_SERVER_UNAVAILABLE)) or (
        # asyncpg has no own class for "used after the server closed it".
        isinstance(exc, asyncpg.InterfaceError) and ("is closed" in str(exc) or "is closing" in str(exc))
    ):
        return Unavailable(
            "the database is unavailable; try again shortly",
            retry_after_s=RETRY_AFTER_S,
            details={"component": "database"},
        )
    reason: str | None
    if type(exc) is asyncpg.DataError:
        # Raised by asyncpg itself, before sending: an argument it cannot encode, e.g. an integer beyond int4/int8.
        reason = "a value is out of range for its field"
    else:
        reason = next((text for cls, text in _VALUE_REFUSED.items() if isinstance(exc, cls)), None)
    if reason is not None:
        return ValidationFailed(f"a value in the request cannot be stored: {reason}", details={"reason": reason})
    return None


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSON crosses the database boundary as msgspec-encoded bytes both ways.
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename,
            schema="pg_catalog",
            encoder=lambda value: msgspec.json.encode(value).decode(),
            decoder=msgspec.json.decode,
        )


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Replaces asyncpg's reset on release (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL``), one round trip on every release, most of a broker node's statements.

    The platform leaves no session state on a pooled connection: locks are
    transaction-scoped (``pg_advisory_xact_lock``; the migration lock is
    released in ``finally``), nothing is ``SET`` outside a transaction, no
    cursor is ``WITH HOLD``, and the two LISTEN holders (device changes, the
    outbox publisher) give their connection back through
    ``Database.release_listening``. asyncpg still rolls back an open transaction and drops the
    connection's Python-side listeners before calling this.
    """


async def _create_pool(dsn: str | None, min_size: int, max_size: int, statement_cache_size: int) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        connect=_connect,
        reset=_keep_session,
        # Every named query stays prepared on every connection (sql/queries holds about 200;
        # asyncpg's default of 100 would re-prepare, a round trip, as a mixed load cycles them).
        # 0 behind a transaction-mode PgBouncer older than 1.21: asyncpg then sends unnamed statements.
        statement_cache_size=statement_cache_size,
        timeout=CONNECT_TIMEOUT_S,
    )


class Database:
    """The asyncpg pool; ``fetch``/``fetchrow``/... run a named query on a pooled connection."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str | None = None,
        *,
        listen_pool: asyncpg.Pool | None = None,
        listen_dsn: str | None = None,
    ) -> None:
        self.pool = pool
        self.dsn = dsn  # None: the libpq PG* variables
        # Session holders (LISTEN) borrow from here: the pool itself, or one on DATABASE_LISTEN_URL.
        self.listen_pool = listen_pool or pool
        self.listen_dsn = listen_dsn if listen_pool is not None else dsn

    @classmethod
    async def connect(
        cls,
        dsn: str | None,
        *,
        min_size: int = 2,
        max_size: int = 10,
        listen_dsn: str | None = None,
        statement_cache_size: int = STATEMENT_CACHE_SIZE,
    ) -> Database:
        """The pool on ``dsn`` and, when ``listen_dsn`` names another server (``dsn`` through PgBouncer
        in transaction mode, ``listen_dsn`` direct), a small pool there for the LISTEN holders."""
        # dsn None: asyncpg reads the libpq PG* variables, as the seed did.
        pool = await _create_pool(dsn, min(min_size, max_size), max_size, statement_cache_size)
        listen_pool = None
        if listen_dsn and listen_dsn != dsn:
            try:
                # Two holders (device changes, the outbox publisher), and room for one being replaced.
                listen_pool = await _create_pool(listen_dsn, 0, LISTEN_POOL_SIZE, STATEMENT_CACHE_SIZE)
            except BaseException:
                await pool.close()
                raise
        return cls(pool, dsn, listen_pool=listen_pool, listen_dsn=listen_dsn)

    async def close(self) -> None:
        await self.pool.close()
        if self.listen_pool is not self.pool:
            await self.listen_pool.close()

    async def acquire_listening(self) -> asyncpg.pool.PoolConnectionProxy:
        """A connection to LISTEN on, for as long as the holder listens; hand it back with ``release_listening``."""
        return await self.listen_pool.acquire()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """One short explicit transaction; services receive the connection."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def release_listening(self, conn: asyncpg.pool.PoolConnectionProxy, callback: Any, *channels: str) -> None:
        """UNLISTEN and give a LISTEN holder's connection back to the pool.

        The pool does not reset sessions (``_keep_session``), so a connection whose UNLISTEN fails is
        terminated, never lent to another caller. One the server closed is already back in the pool,
        closed: then every call on it refuses, and there is nothing left to do.
        """
        try:
            for channel in channels:
                await conn.remove_listener(channel, callback)
            await self.listen_pool.release(conn, timeout=5)
        except Exception as exc:
            log.debug("listening connection not released cleanly", extra={"error": type(exc).__name__})
            with contextlib.suppress(Exception):
                conn.terminate()

    async def fetch(self, name: str, *args: Any) -> list[asyncpg.Record]:
        return await self.pool.fetch(QUERIES[name], *args)

    async def fetchrow(self, name: str, *args: Any) -> asyncpg.Record | None:
        return await self.pool.fetchrow(QUERIES[name], *args)

    async def fetchval(self, name: str, *args: Any) -> Any:
        return await self.pool.fetchval(QUERIES[name], *args)

    async def execute(self, name: str, *args: Any) -> str:
        return await self.pool.execute(QUERIES[name], *args)
