"""``serve --demo`` gives a newcomer a device they can connect with straight away."""

from __future__ import annotations

from qris_soundbox.core.devices.demo import seed_demo_device
from tests.support import RunningPlatform


async def test_demo_device_is_seeded_once_and_its_printed_secret_works(running: RunningPlatform) -> None:
    await seed_demo_device(running.platform)
    lines = await seed_demo_device(running.platform)  # a second start: same device, new secret
    device_id = lines[0].split()[2]
    password = lines[2].split()[-1]
    count = await running.platform.db.pool.fetchval("SELECT count(*) FROM devices WHERE serial_number = 'DEMO-SB-0001'")
    assert count == 1
    async with running.mqtt(device_id, password):
        pass
