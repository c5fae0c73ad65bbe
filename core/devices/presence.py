"""Presence (broker connect/disconnect) and heartbeats (MQTT and HTTP alike).

Presence costs one UPDATE per event. Events carry the time they happened and
an older event never overwrites a newer one, because amqtt runs plugin
handlers as independent tasks and a take-over's disconnect may land after the
new session's connect.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import asyncpg
import msgspec

from qris_soundbox.core.db import Database
from qris_soundbox.core.devices.errors import DeviceNotFound, MalformedUplink
from qris_soundbox.core.devices.registry import get_device
from qris_soundbox.core.devices.schemas import Heartbeat, HeartbeatRecorded
from qris_soundbox.core.runtime import HEARTBEAT_FRESH_S

log = logging.getLogger(__name__)


async def mark_presence(db: Database, device_id: str, *, online: bool, at: datetime, instance_id: str) -> None:
    await db.execute("device_presence", device_id, online, at, instance_id)


async def release_instance(db: Database, instance_id: str) -> None:
    """A broker stopping: its devices are offline."""
    await db.execute("device_presence_release_instance", instance_id)


async def release_stale(db: Database) -> None:
    """A broker starting: devices still online on brokers that stopped reporting are offline."""
    await db.execute("device_presence_release_stale", HEARTBEAT_FRESH_S)


async def record_heartbeat(
    db: Database, conn: asyncpg.Connection, device_id: str, heartbeat: Heartbeat
) -> HeartbeatRecorded:
    """The one place a heartbeat is recorded, whichever way it arrived."""
    if heartbeat.device_id is not None and heartbeat.device_id != device_id:
        raise MalformedUplink(
            "device_id in the heartbeat is not the authenticated device", details={"field": "device_id"}
        )
    received = await conn.fetchval(
        db.q["device_record_heartbeat"], device_id, heartbeat.battery_level, heartbeat.network_strength,
        heartbeat.firmware_version,
        {key: value for key, value in msgspec.to_builtins(heartbeat).items() if value is not None},
    )
    if received is None:
        raise DeviceNotFound(device_id)
    device = await get_device(db, conn, device_id)
    return HeartbeatRecorded(
        device_id=device_id, received_at=device.last_heartbeat_at or datetime.now(UTC), health_summary=device.health_summary
    )
