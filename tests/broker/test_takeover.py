"""Stock amqtt 0.12.1 handles session take-over and clean-session deletion before
it authenticates the CONNECT, so a refused CONNECT could evict a connected
device's session. PlatformBroker authenticates first (docs/broker.md); these
tests pin that with the real device auth plugin."""

from __future__ import annotations

import pytest
from aiomqtt.exceptions import MqttConnectError

from tests.devices.helpers import first_message, provisioned_device
from tests.support import RunningPlatform


async def test_refused_connect_with_a_devices_client_id_does_not_evict_it(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    async with running.mqtt(device_id, secret) as victim:
        await victim.subscribe(f"devices/{device_id}/downlink/#", qos=1)
        with pytest.raises(MqttConnectError):
            async with running.mqtt(device_id, "wrong-secret"):
                pass
        broker = running.platform.broker
        assert broker is not None
        await broker.internal_message_broadcast(f"devices/{device_id}/downlink/command", b'{"message_id": "m1"}', 1)
        message = await first_message(victim, timeout=2)
        assert message is not None and message.payload == b'{"message_id": "m1"}'


async def test_control_a_broadcast_downlink_reaches_the_subscribed_device(running: RunningPlatform) -> None:
    """The check above is meaningful: without the refused CONNECT the downlink arrives."""
    device_id, secret = await provisioned_device(running)
    async with running.mqtt(device_id, secret) as device:
        await device.subscribe(f"devices/{device_id}/downlink/#", qos=1)
        broker = running.platform.broker
        assert broker is not None
        await broker.internal_message_broadcast(f"devices/{device_id}/downlink/command", b'{"message_id": "m0"}', 1)
        message = await first_message(device, timeout=2)
        assert message is not None and message.payload == b'{"message_id": "m0"}'
