"""A simulated soundbox whose connection is lost reconnects by itself, as firmware does.

The soak bench (bench/soak.py) drops devices at random and counts on this; before,
a soundbox that lost its first session took the lost connection for a failed
first connect and gave up for good.
"""

from __future__ import annotations

from tests.devices.helpers import provisioned_device
from tests.support import RunningPlatform
from tests.tools.helpers import LiveCli


async def test_a_soundbox_that_loses_its_connection_reconnects(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    sim = await LiveCli.start(
        "simulate",
        "--device-id",
        device_id,
        "--secret",
        secret,
        "--mqtt-host",
        running.mqtt_host,
        "--mqtt-port",
        str(running.mqtt_port),
        "--heartbeat-s",
        "0",
    )
    try:
        await sim.wait_for(lambda line: "listening on" in line)
        # Another session with the device's id and secret takes its session over: the broker
        # closes the simulator's connection, as a lost network would end it.
        async with running.mqtt(device_id, secret):
            await sim.wait_for(lambda line: "connection lost" in line)
        await sim.wait_for(lambda line: line.endswith("reconnected"))
    finally:
        await sim.interrupt()
