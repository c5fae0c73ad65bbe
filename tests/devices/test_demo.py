"""``serve --demo`` gives a newcomer a bound device they can connect with straight away."""

from __future__ import annotations

import msgspec

from qris_soundbox.core.demo import seed_demo
from tests.devices.helpers import first_message
from tests.payments.helpers import callback_body, post_callback
from tests.support import RunningPlatform


def _device_lines(lines: list[str]) -> tuple[str, str, str]:
    index = next(i for i, line in enumerate(lines) if line.startswith("demo device"))
    device_id = lines[index].split()[2]
    terminal_id = lines[index].rstrip(")").split()[-1]
    password = lines[index + 2].split()[-1]
    return device_id, terminal_id, password


async def test_demo_device_is_seeded_once_bound_and_its_printed_secret_works(running: RunningPlatform) -> None:
    await seed_demo(running.platform)
    lines = await seed_demo(running.platform)  # a second start: same objects, new device secret
    device_id, terminal_id, password = _device_lines(lines)
    count = await running.platform.db.pool.fetchval("SELECT count(*) FROM devices WHERE serial_number = 'DEMO-SB-0001'")
    assert count == 1
    async with running.mqtt(device_id, password) as device:
        await device.subscribe(f"devices/{device_id}/downlink/#", qos=1)
        paid = await post_callback(running, callback_body(amount=25_000, terminal_id=terminal_id))
        assert paid.status_code == 200, paid.text
        message = await first_message(device, timeout=5)
    assert message is not None and msgspec.json.decode(message.payload)["amount"] == 25_000
