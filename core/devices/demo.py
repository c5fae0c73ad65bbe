"""Demo data for devices (``serve --demo``): one screen soundbox bound to the demo terminal, freshly credentialed."""

from __future__ import annotations

import shlex

from qris_soundbox.core.audit import SYSTEM
from qris_soundbox.core.context import PlatformContext
from qris_soundbox.core.db import QUERIES
from qris_soundbox.core.devices import credentials, registry
from qris_soundbox.core.devices.errors import SerialNumberTaken
from qris_soundbox.core.devices.schemas import DeviceCreate

DEMO_SERIAL = "DEMO-SB-0001"


async def seed_demo_device(platform: PlatformContext, terminal_id: str) -> list[str]:
    """Register and bind the demo device once; issue it a new secret on every start (secrets are shown only once)."""
    db = platform.db
    async with db.transaction() as conn:
        device_id = await conn.fetchval(QUERIES["device_id_by_serial"], DEMO_SERIAL)
        if device_id is None:
            try:
                device_id = (
                    await registry.register_device(
                        conn, SYSTEM, DeviceCreate(serial_number=DEMO_SERIAL, model="generic-screen")
                    )
                ).id
            except SerialNumberTaken:
                return []
        device = await registry.get_device(conn, device_id)
        if device.terminal_id is None and device.status != "retired":
            await registry.bind(conn, SYSTEM, device_id, terminal_id)
        issued = await credentials.rotate(
            conn, SYSTEM, device_id, platform.device_broker_address(), platform.device_announcement_keys()
        )
    return [
        f"demo device  {device_id}  (generic-screen, serial {DEMO_SERIAL}, bound to terminal {terminal_id})",
        f"  MQTT {issued.broker.url}  username = client id = {device_id}",
        f"  password {issued.mqtt_password}",
        # Pasted into a shell by the README's tour.
        f"export DEV={device_id} PW={shlex.quote(issued.mqtt_password)} TER={terminal_id}",
    ]
