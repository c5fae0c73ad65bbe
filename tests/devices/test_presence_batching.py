"""Presence is written in batches (``core.devices.presence.PresenceWriter``): whatever the
order and pace of connects and disconnects, PostgreSQL must end up with each
device's last state, and an older event must never overwrite a newer one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from qris_soundbox.core.devices.presence import PresenceWriter
from qris_soundbox.plugins.presence import DevicePresencePlugin
from tests.devices.helpers import device_detail, eventually, provisioned_device
from tests.support import RunningPlatform

CYCLES = 8


def presence_writer(running: RunningPlatform) -> PresenceWriter:
    broker = running.platform.broker
    assert broker is not None
    plugin = broker.plugins_manager.get_plugin(DevicePresencePlugin.__name__)
    assert isinstance(plugin, DevicePresencePlugin)
    return plugin.writer


async def online_states(running: RunningPlatform, device_ids: list[str]) -> dict[str, bool]:
    rows = await running.platform.db.pool.fetch(
        "SELECT id, online FROM devices WHERE id = ANY ($1::text[])", device_ids
    )
    return {row["id"]: row["online"] for row in rows}


async def test_presence_ends_correct_after_rapid_connect_disconnect_cycles(running: RunningPlatform) -> None:
    devices = [await provisioned_device(running) for _ in range(6)]
    stay = {device_id for device_id, _ in devices[:3]}  # these end connected, the others disconnected
    held: list[Any] = []
    release = asyncio.Event()

    async def cycle(device_id: str, secret: str) -> None:
        for _ in range(CYCLES):
            async with running.mqtt(device_id, secret):
                pass
        if device_id in stay:
            async with running.mqtt(device_id, secret) as client:
                held.append(client)
                await release.wait()

    tasks = [asyncio.create_task(cycle(d, s)) for d, s in devices]
    ids = [device_id for device_id, _ in devices]
    expected = {device_id: device_id in stay for device_id in ids}

    async def settled() -> bool:
        return await online_states(running, ids) == expected

    assert await eventually(settled, timeout=15)
    # Nothing still pending may flip it: write what the broker holds, then look again.
    await presence_writer(running).flush()
    assert await online_states(running, ids) == expected
    for device_id in ids:
        assert (await device_detail(running, device_id))["last_seen_at"] is not None

    release.set()
    await asyncio.gather(*tasks)

    async def all_offline() -> bool:
        return not any((await online_states(running, ids)).values())

    assert await eventually(all_offline)


async def test_a_take_over_leaves_the_device_online(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    async with running.mqtt(device_id, secret, clean_session=True) as first:
        await first.subscribe(f"devices/{device_id}/downlink/#", qos=1)
        # The same device connects again (a reboot the broker has not noticed yet): the first session is displaced.
        async with running.mqtt(device_id, secret):

            async def online() -> bool:
                return (await online_states(running, [device_id]))[device_id]

            assert await eventually(online)
            await presence_writer(running).flush()
            assert await online()


async def test_an_older_event_never_overwrites_a_newer_one(running: RunningPlatform) -> None:
    device_id, _ = await provisioned_device(running)
    writer = PresenceWriter(running.platform.db, "test-instance")
    now = datetime.now(UTC)

    # in one batch: the older disconnect arrives after the newer connect
    writer.mark(device_id, online=True, at=now)
    writer.mark(device_id, online=False, at=now - timedelta(seconds=1))
    assert await writer.flush()
    assert (await online_states(running, [device_id]))[device_id] is True

    # across batches: the database keeps the newer event
    writer.mark(device_id, online=False, at=now - timedelta(seconds=2))
    assert await writer.flush()
    assert (await online_states(running, [device_id]))[device_id] is True

    writer.mark(device_id, online=False, at=now + timedelta(seconds=1))
    await writer.close()
    assert (await online_states(running, [device_id]))[device_id] is False


class _FailingOnce:
    """The platform database, except that the first write fails as if PostgreSQL were unreachable."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.failed = False

    async def execute(self, name: str, *args: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise OSError("connection refused")
        return await self._db.execute(name, *args)


async def test_a_failed_write_is_kept_and_written_later(running: RunningPlatform) -> None:
    device_id, _ = await provisioned_device(running)
    db = _FailingOnce(running.platform.db)
    writer = PresenceWriter(db, "test-instance")  # type: ignore[arg-type]
    writer.mark(device_id, online=True, at=datetime.now(UTC))
    assert await writer.flush() is False
    assert (await online_states(running, [device_id]))[device_id] is False
    assert await writer.flush() is True
    assert (await online_states(running, [device_id]))[device_id] is True
    await writer.close()
