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

from qris_soundbox.core.batching import Batch, BatchWriter, CoalescedReads
from qris_soundbox.core.db import Database
from qris_soundbox.core.devices import health
from qris_soundbox.core.devices.errors import DeviceNotFound, MalformedUplink
from qris_soundbox.core.devices.schemas import Heartbeat, HeartbeatRecorded
from qris_soundbox.core.devices.uplink_writes import UplinkWrites

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


class HttpHeartbeats:
    """A process's HTTP heartbeats (``POST /device/heartbeat``), one per process on the platform context.

    The answer (the device's health with this heartbeat counted) needs the device's state and its pending
    acks, not the write: the state is read for every heartbeat waiting at the same moment in one query
    (``CoalescedReads``), and the write joins the process's next batch of MQTT heartbeats
    (``core/devices/uplink_writes.py``, at most ``flush_after_s`` later). So a heartbeat holds no pool
    connection of its own and opens no transaction; what that means for a reader is in docs/devices.md
    ("Heartbeats").
    """

    def __init__(self, db: Database, writes: UplinkWrites) -> None:
        self._states = CoalescedReads(db, "device_heartbeat_states")
        self._writes = writes

    async def record(self, device_id: str, heartbeat: Heartbeat) -> HeartbeatRecorded:
        check_heartbeat(device_id, heartbeat)
        received_at = datetime.now(UTC)
        state = await self._states.get(device_id)
        if state is None:
            raise DeviceNotFound(device_id)
        self._writes.heartbeat(device_id, heartbeat, received_at)
        summary = health.health_summary(
            status=state["status"],
            has_credential=state["has_credential"],
            online=state["online"],
            last_seen_at=max(received_at, state["last_seen_at"] or received_at),
            last_heartbeat_at=received_at,
            battery_level=_newer(heartbeat.battery_level, state["battery_level"]),
            network_strength=_newer(heartbeat.network_strength, state["network_strength"]),
            pending_acks=state["pending_acks"],
            now=received_at,
        )
        return HeartbeatRecorded(device_id=device_id, received_at=received_at, health_summary=summary)

    def close(self) -> None:
        self._states.close()


def _newer(sent: int | None, stored: int | None) -> int | None:
    """A heartbeat leaves a value it does not carry as it was (``COALESCE`` in device_record_heartbeats)."""
    return stored if sent is None else sent
