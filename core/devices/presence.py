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

import logging
from datetime import UTC, datetime

import msgspec

from qris_soundbox.core.batching import Batch, BatchWriter
from qris_soundbox.core.db import QUERIES, Connection, Database
from qris_soundbox.core.devices.errors import DeviceNotFound, MalformedUplink
from qris_soundbox.core.devices.registry import get_device
from qris_soundbox.core.devices.schemas import Heartbeat, HeartbeatRecorded

log = logging.getLogger(__name__)


class PresenceWriter(BatchWriter[str, bool]):
    """A broker's presence events, one UPDATE at most every ``flush_after_s``.

    Per device only the newest event waits (a connect and a disconnect within
    one interval leave the later one); a failed write is retried
    (``core/batching.py``).
    """

    def __init__(self, db: Database, instance_id: str, flush_after_s: float = 0.1, retry_after_s: float = 1.0) -> None:
        super().__init__(
            self._write_presence, what="presence", flush_after_s=flush_after_s, retry_after_s=retry_after_s
        )
        self._db = db
        self._instance_id = instance_id

    def mark(self, device_id: str, *, online: bool, at: datetime) -> None:
        self.put(device_id, online, at)

    async def _write_presence(self, batch: Batch[str, bool]) -> None:
        await self._db.execute(
            "device_presence",
            list(batch),
            [online for online, _ in batch.values()],
            [at for _, at in batch.values()],
            self._instance_id,
        )


async def release_instance(db: Database, instance_id: str) -> None:
    """A broker stopping: its devices are offline."""
    await db.execute("device_presence_release_instance", instance_id)


async def release_stale(db: Database) -> int:
    """Devices still online on brokers whose last heartbeat has run out are offline; how many there were."""
    return len(await db.fetch("device_presence_release_stale"))


def check_heartbeat(device_id: str, heartbeat: Heartbeat) -> None:
    """A heartbeat, whichever way it arrived, is the authenticated device's own."""
    if heartbeat.device_id is not None and heartbeat.device_id != device_id:
        raise MalformedUplink(
            "device_id in the heartbeat is not the authenticated device", details={"field": "device_id"}
        )


async def record_heartbeat(conn: Connection, device_id: str, heartbeat: Heartbeat) -> HeartbeatRecorded:
    """An HTTP heartbeat, written at once: its caller gets the device's health in the answer.
    (MQTT heartbeats, answered by nobody, are written in batches: ``core/devices/uplink_writes.py``.)"""
    check_heartbeat(device_id, heartbeat)
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
