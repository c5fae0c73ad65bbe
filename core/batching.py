"""Writes that may wait a moment, and reads that arrive together, gathered per process and sent as one statement.

A broker node receives events for thousands of devices a second (connects,
heartbeats, uplinks); a transaction each would hold the pool connections that
authentication and payments need (docs/performance.md, "Several broker
nodes"). ``BatchWriter`` keeps them per key and hands them to one write at
most every ``flush_after_s``. ``CoalescedReads`` answers the lookups of one
row by key that wait at the same moment with one query; ``Snapshot`` serves
a read that many callers want from one read at most every ``max_age_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Generic, TypeVar

import asyncpg

from qris_soundbox.core.db import Database

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")
Batch = dict[K, tuple[V, datetime]]


class BatchWriter(Generic[K, V]):
    """Gathers ``(key, value, at)`` and writes them together at most every ``flush_after_s``.

    Per key only the newest value waits (by ``at``). A failed write keeps its
    values, unless newer ones arrived meanwhile, and is retried after
    ``retry_after_s``; events arriving during a write go to the next one. A
    write the database refuses for its values (``asyncpg.DataError``) is
    dropped and logged: retried, it would block every later batch.
    """

    def __init__(
        self,
        write: Callable[[Batch[K, V]], Awaitable[object]],
        *,
        what: str,
        flush_after_s: float = 0.1,
        retry_after_s: float = 1.0,
    ) -> None:
        self._write = write
        self._what = what
        self._flush_after_s = flush_after_s
        self._retry_after_s = retry_after_s
        self._pending: Batch[K, V] = {}
        self._task: asyncio.Task[None] | None = None
        # One write at a time: a flush returns once everything put before it is written.
        self._writing = asyncio.Lock()

    def put(self, key: K, value: V, at: datetime) -> None:
        self._keep(key, value, at)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush_while_pending())

    def _keep(self, key: K, value: V, at: datetime) -> None:
        waiting = self._pending.get(key)
        if waiting is None or waiting[1] <= at:
            self._pending[key] = (value, at)

    async def _flush_while_pending(self) -> None:
        delay = self._flush_after_s
        while self._pending:
            await asyncio.sleep(delay)
            delay = self._flush_after_s if await self.flush() else self._retry_after_s

    async def flush(self) -> bool:
        """Write what is pending now; False if the write failed (the values stay pending)."""
        async with self._writing:
            batch, self._pending = self._pending, {}
            if not batch:
                return True
            try:
                await self._write(batch)
            except asyncio.CancelledError:
                self._restore(batch)  # close() stopping the timer mid-write: its final flush writes them
                raise
            except asyncpg.DataError as exc:
                # A value the database refuses (the callers validate what they put; this is the last line):
                # written again it would fail again and hold every later value back, so it is dropped.
                log.error(
                    "batched write refused, dropped", extra={"what": self._what, "rows": len(batch), "error": repr(exc)}
                )
                return True
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("batched write failed", extra={"what": self._what, "rows": len(batch), "error": repr(exc)})
                self._restore(batch)
                return False
            return True

    def _restore(self, batch: Batch[K, V]) -> None:
        for key, (value, at) in batch.items():
            self._keep(key, value, at)

    async def close(self) -> None:
        """Stop the timer and write what is left (the process is stopping)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()


class CoalescedReads:
    """Reads rows by key, one query for all the lookups waiting at once.

    ``query`` is a named query taking an array of keys (``WHERE id = ANY ($1::text[])``) and returning
    at most one row per key, with the key in column ``key``. A lookup joins the next query, never one
    already sent, so it always sees the row as it is after it was asked for. Alone, a lookup is one
    query as before; under load, one query (and one pool round trip) serves every lookup that arrived
    while the previous one ran, instead of one each.
    """

    def __init__(self, db: Database, query: str, key: str = "id") -> None:
        self._db = db
        self._query = query
        self._key = key
        self._waiting: dict[str, list[asyncio.Future[asyncpg.Record | None]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def get(self, key: str) -> asyncpg.Record | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[asyncpg.Record | None] = loop.create_future()
        self._waiting.setdefault(key, []).append(future)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._read_while_waiting())
        return await future

    async def _read_while_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            try:
                rows = {row[self._key]: row for row in await self._db.fetch(self._query, list(batch))}
            except Exception as exc:  # each lookup fails as its own query would have
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for key, futures in batch.items():
                for future in futures:
                    if not future.done():  # a lookup given up (connection closed) cancels its wait
                        future.set_result(rows.get(key))

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


class Snapshot(Generic[T]):
    """A value read at most once every ``max_age_s``, however many callers want it.

    A caller within ``max_age_s`` of the start of the last successful read gets its value; a caller
    arriving while a read runs waits for that read (single flight); a failed read is not kept, every
    waiting caller gets its error and the next caller reads again. So the value is at most
    ``max_age_s`` (plus one read) old: callers that show it say when it was read.
    """

    def __init__(self, max_age_s: float) -> None:
        self._max_age_s = max_age_s
        self._value: tuple[float, T] | None = None
        self._reading: asyncio.Future[T] | None = None

    async def get(self, read: Callable[[], Awaitable[T]]) -> T:
        if self._value is not None and time.monotonic() - self._value[0] < self._max_age_s:
            return self._value[1]
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read(read))
            # Its callers may all have gone away: a failure is theirs to see, not a "never retrieved" warning.
            self._reading.add_done_callback(lambda done: done.cancelled() or done.exception())
        # Shielded: a caller that goes away must not cancel the read the others wait for.
        return await asyncio.shield(self._reading)

    async def _read(self, read: Callable[[], Awaitable[T]]) -> T:
        started = time.monotonic()
        value = await read()
        self._value = (started, value)
        return value
