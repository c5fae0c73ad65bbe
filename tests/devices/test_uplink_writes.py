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


async def test_a_nul_in_an_mqtt_heartbeat_neither_reaches_the_database_nor_holds_back_others(
    running: RunningPlatform,
) -> None:
    """PostgreSQL stores no U+0000 in text: such a heartbeat is refused on decoding and its trace row keeps
    a replacement character, so the node's next batch carries the other devices' heartbeats as usual."""
    (bad_id, bad_secret), (good_id, good_secret) = [await provisioned_device(running) for _ in range(2)]
    async with running.mqtt(bad_id, bad_secret) as bad, running.mqtt(good_id, good_secret) as good:
        await bad.publish(
            f"devices/{bad_id}/uplink/heartbeat", b'{"firmware_version": "1.0\\u0000", "message_id": "b\\u0000"}', qos=1
        )
        await good.publish(f"devices/{good_id}/uplink/heartbeat", b'{"battery_level": 61}', qos=1)

        async def written() -> bool:
            return (await device_detail(running, good_id))["battery_level"] == 61

        assert await eventually(written, timeout=5)
    assert (await device_detail(running, bad_id))["last_heartbeat_at"] is None
    trace = await running.http.get(f"/admin/devices/{bad_id}/mqtt-messages", headers=running.admin_headers)
    assert [m["message_id"] for m in trace.json()["items"]] == ["b\ufffd"]


async def test_a_batch_the_database_refuses_is_dropped_not_retried_forever(running: RunningPlatform) -> None:
    device_id, _ = await provisioned_device(running)
    writes = UplinkWrites(running.platform.db, flush_after_s=60)
    try:
        # Built directly, so not validated as a decoded one would be: the database refuses the NUL.
        writes.heartbeat(device_id, Heartbeat(firmware_version="9.9\x00"), datetime.now(UTC))
        assert await writes.flush()  # refused and dropped: nothing left to retry
        writes.heartbeat(device_id, Heartbeat(battery_level=7), datetime.now(UTC))
        assert await writes.flush()
    finally:
        await writes.close()
    detail = await device_detail(running, device_id)
    assert (detail["battery_level"], detail["firmware_version"]) == (7, None)
