"""Per-device counts kept in memory and added to a column of ``devices`` in coalesced writes.

What a misbehaving device does many times a second (topics outside its ACL, uplinks past its budget)
is counted for the operator on the device's row, but one UPDATE for all devices every
``flush_after_s``, so the counting cannot itself become the write storm it reports.
"""

from __future__ import annotations

import asyncio
import logging

from qris_soundbox.core.db import Database

log = logging.getLogger(__name__)


class DeviceCounter:
    """Counts per device; ``query`` (device ids, counts as parallel arrays) adds a flush's counts."""

    def __init__(self, db: Database, query: str, flush_after_s: float = 0.5) -> None:
        self._db = db
        self._query = query
        self._flush_after_s = flush_after_s
        self._pending: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self._flush_task: asyncio.Task[None] | None = None

    def count(self, device_id: str) -> None:
        self._pending[device_id] = self._pending.get(device_id, 0) + 1
        self.totals[device_id] = self.totals.get(device_id, 0) + 1
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        # Loops while counts keep coming: a count() made during a flush finds this
        # task still running and schedules nothing, so this task must pick it up.
        while self._pending:
            await asyncio.sleep(self._flush_after_s)
            await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            await self._db.execute(self._query, list(pending), list(pending.values()))
        except Exception as exc:
            log.warning(
                "could not persist device counts",
                extra={"query": self._query, "error": repr(exc), "devices": len(pending)},
            )
            for device_id, count in pending.items():  # keep them for the next flush
                self._pending[device_id] = self._pending.get(device_id, 0) + count

    async def close(self) -> None:
        if self._flush_task is not None and not self._flush_task.done():
            self._flush_task.cancel()
            await asyncio.gather(self._flush_task, return_exceptions=True)
        await self.flush()
