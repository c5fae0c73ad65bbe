"""ACL denial counts reach PostgreSQL even when they arrive while a flush is running."""

from __future__ import annotations

import asyncio

from qris_soundbox.core.devices.counters import DeviceCounter
from tests.devices.helpers import eventually, register_device
from tests.support import RunningPlatform


async def test_denials_counted_during_a_flush_are_written_too(running: RunningPlatform) -> None:
    db = running.platform.db
    device_id = (await register_device(running))["id"]
    counter = DeviceCounter(db, "device_add_acl_denials", flush_after_s=0.05)

    async def persisted() -> int:
        return await db.pool.fetchval("SELECT acl_denials FROM devices WHERE id = $1", device_id)

    blocker = await db.pool.acquire()
    try:
        # Hold the device row so the first flush blocks mid-write.
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("SELECT 1 FROM devices WHERE id = $1 FOR UPDATE", device_id)
        counter.count(device_id)
        await asyncio.sleep(0.2)  # the first flush is now waiting on the row lock
        counter.count(device_id)  # arrives while that flush runs
        await transaction.rollback()
    finally:
        await db.pool.release(blocker)

    async def both_written() -> bool:
        return await persisted() == 2

    assert await eventually(both_written, timeout=3)
    await counter.close()
