"""Presence (broker connect/disconnect) and heartbeats (MQTT and HTTP alike).

Presence events are coalesced per device and written together, one UPDATE
every ``PresenceWriter`` interval: after a broker restart the whole fleet
connects within seconds, and an UPDATE (a commit) per event would hold the
pool connections that authentication needs (docs/performance.md). Events
carry the time they happened and an older event never overwrites a newer
one, in the batch or in the database, because a take-over's disconnect may
be handled after the new session's connect.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import asyncpg
import msgspec

from qris_soundbox.core.db import QUERIES, Connection, Database
from qris_soundbox.core.devices.errors import DeviceNotFound, MalformedUplink
from qris_soundbox.core.devices.registry import get_device
from qris_soundbox.core.devices.schemas import Heartbeat, HeartbeatRecorded

log = logging.getLogger(__name__)


class PresenceWriter:
    """Coalesces a broker's presence events and writes them in one UPDATE at most every ``flush_after_s``.

    Per device only the newest event waits (a connect and a disconnect within
    one interval leave the later one). A failed write keeps its events, unless
    newer ones arrived meanwhile, and is retried after ``retry_after_s``.
    """

    def __init__(self, db: Database, instance_id: str, flush_after_s: float = 0.1, retry_after_s: float = 1.0) -> None:
        self._db = db
        self._instance_id = instance_id
        self._flush_after_s = flush_after_s
        self._retry_after_s = retry_after_s
        self._pending: dict[str, tuple[bool, datetime]] = {}
        self._task: asyncio.Task[None] | None = None

    def mark(self, device_id: str, *, online: bool, at: datetime) -> None:
        self._keep(device_id, online, at)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush_while_pending())

    def _keep(self, device_id: str, online: bool, at: datetime) -> None:
        waiting = self._pending.get(device_id)
        if waiting is None or waiting[1] <= at:
            self._pending[device_id] = (online, at)

    async def _flush_while_pending(self) -> None:
        # Events arriving during a write are picked up by the next round, not left behind.
        delay = self._flush_after_s
        while self._pending:
            await asyncio.sleep(delay)
            delay = self._flush_after_s if await self.flush() else self._retry_after_s

    async def flush(self) -> bool:
        """Write what is pending now; False if the write failed (the events stay pending)."""
        batch, self._pending = self._pending, {}
        if not batch:
            return True
        try:
            await self._db.execute(
                "device_presence",
                list(batch),
                [online for online, _ in batch.values()],
                [at for _, at in batch.values()],
                self._instance_id,
            )
        except asyncio.CancelledError:
            self._restore(batch)  # close() stopping the timer mid-write: its final flush writes them (again: harmless)
            raise
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("presence update failed", extra={"devices": len(batch), "error": repr(exc)})
            self._restore(batch)
            return False
        return True

    def _restore(self, batch: dict[str, tuple[bool, datetime]]) -> None:
        for device_id, (online, at) in batch.items():
            self._keep(device_id, online, at)

    async def close(self) -> None:
        """Stop the timer and write what is left (the broker is stopping)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()


async def release_instance(db: Database, instance_id: str) -> None:
    """A broker stopping: its devices are offline."""
    await db.execute("device_presence_release_instance", instance_id)


async def release_stale(db: Database) -> int:
    """Devices still online on brokers whose last heartbeat has run out are offline; how many there were."""
    return len(await db.fetch("device_presence_release_stale"))


async def record_heartbeat(conn: Connection, device_id: str, heartbeat: Heartbeat) -> HeartbeatRecorded:
    """The one place a heartbeat is recorded, whichever way it arrived."""
    if heartbeat.device_id is not None and heartbeat.device_id != device_id:
        raise MalformedUplink(
            "device_id in the heartbeat is not the authenticated device", details={"field": "device_id"}
        )
    received = await conn.fetchval(
        QUERIES["device_record_heartbeat"],
        device_id,
        heartbeat.battery_level,
        heartbeat.network_strength,
        heartbeat.firmware_version,
        {key: value for key, value in msgspec.to_builtins(heartbeat).items() if value is not None},
    )
    if received is None:
        raise DeviceNotFound(device_id)
    device = await get_device(conn, device_id)
    return HeartbeatRecorded(
        device_id=device_id,
        received_at=device.last_heartbeat_at or datetime.now(UTC),
        health_summary=device.health_summary,
    )
