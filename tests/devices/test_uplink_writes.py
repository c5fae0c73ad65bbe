"""A broker node's MQTT heartbeats and uplink trace rows are written in batches
(``core.devices.uplink_writes.UplinkWrites``): one statement for many devices, the newest heartbeat of
each device kept, every uplink traced with the time it arrived; and over real MQTT a heartbeat still
reaches the device's row and its trace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from qris_soundbox.core.db import QUERIES
from qris_soundbox.core.devices.schemas import Heartbeat
from qris_soundbox.core.devices.uplink_writes import UplinkWrites
from tests.devices.helpers import device_detail, eventually, provisioned_device
from tests.support import RunningPlatform

DEVICES = 20


class _CountingWrites:
    """The platform database, counting the named statements run in its transactions."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.statements: list[str] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self._db.transaction() as conn:
            yield _CountingConnection(conn, self.statements)


class _CountingConnection:
    def __init__(self, conn: Any, statements: list[str]) -> None:
        self._conn, self._statements = conn, statements

    async def execute(self, sql: str, *args: Any) -> Any:
        self._statements.append(next(name for name, text in QUERIES.items() if text == sql))
        return await self._conn.execute(sql, *args)


async def test_many_devices_heartbeats_and_trace_rows_are_two_statements_newest_heartbeat_kept(
    running: RunningPlatform,
) -> None:
    devices = [(await provisioned_device(running))[0] for _ in range(DEVICES)]
    db = _CountingWrites(running.platform.db)
    writes = UplinkWrites(db, flush_after_s=60)  # type: ignore[arg-type]
    now = datetime.now(UTC)
    for index, device_id in enumerate(devices):
        topic = f"devices/{device_id}/uplink/heartbeat"
        writes.heartbeat(device_id, Heartbeat(battery_level=50, firmware_version="1.0.0"), now)
        writes.heartbeat(
            device_id, Heartbeat(battery_level=index, firmware_version="1.2.0"), now + timedelta(seconds=1)
        )
        # An older heartbeat handled late does not overwrite the newer one.
        writes.heartbeat(device_id, Heartbeat(battery_level=99), now - timedelta(seconds=1))
        writes.trace_uplink(device_id, topic, b'{"message_id": "hb-%d"}' % index, 1, now)
    assert await writes.flush()
    assert sorted(db.statements) == ["device_record_heartbeats", "insert_device_mqtt_messages"]

    rows = await running.platform.db.pool.fetch(
        "SELECT id, battery_level, firmware_version, last_heartbeat_at FROM devices WHERE id = ANY($1::text[])",
        devices,
    )
    assert {row["id"]: row["battery_level"] for row in rows} == {d: i for i, d in enumerate(devices)}
    assert {row["firmware_version"] for row in rows} == {"1.2.0"}
    assert {row["last_heartbeat_at"] for row in rows} == {now + timedelta(seconds=1)}
    traced = await running.platform.db.pool.fetch(
        "SELECT device_id, message_id, direction, created_at FROM device_mqtt_messages"
        " WHERE device_id = ANY($1::text[])",
        devices,
    )
    assert sorted((r["device_id"], r["message_id"]) for r in traced) == sorted(
        (d, f"hb-{i}") for i, d in enumerate(devices)
    )
    assert {(r["direction"], r["created_at"]) for r in traced} == {("uplink", now)}
    await writes.close()


async def test_an_mqtt_heartbeat_reaches_the_device_row_and_its_trace(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    async with running.mqtt(device_id, secret) as client:
        await client.publish(
            f"devices/{device_id}/uplink/heartbeat", b'{"battery_level": 42, "message_id": "beat-1"}', qos=1
        )

        async def written() -> bool:
            detail = await device_detail(running, device_id)
            return detail["battery_level"] == 42 and detail["last_heartbeat_at"] is not None

        assert await eventually(written, timeout=5)
    await running.platform.uplink_writes.flush()
    trace = await running.http.get(f"/admin/devices/{device_id}/mqtt-messages", headers=running.admin_headers)
    assert trace.status_code == 200, trace.text
    assert any(m["message_id"] == "beat-1" and m["direction"] == "uplink" for m in trace.json()["items"])
