"""Writes that may wait a moment, gathered per process and sent as one statement.

A broker node receives events for thousands of devices a second (connects,
heartbeats, uplinks); a transaction each would hold the pool connections that
authentication and payments need (docs/performance.md, "Several broker
nodes"). ``BatchWriter`` keeps them per key and hands them to one write at
most every ``flush_after_s``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Generic, TypeVar

import asyncpg

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")
Batch = dict[K, tuple[V, datetime]]


class BatchWriter(Generic[K, V]):
    """Gathers ``(key, value, at)`` and writes them together at most every ``flush_after_s``.

    Per key only the newest value waits (by ``at``). A failed write keeps its
    values, unless newer ones arrived meanwhile, and is retried after
    ``retry_after_s``; events arriving during a write go to the next one.
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
