"""The topic ACL through a real client: a device reaches its own topics and nobody else's."""

from __future__ import annotations

import aiomqtt
import pytest

from tests.devices.helpers import device_detail, eventually, first_message, provisioned_device
from tests.support import RunningPlatform

REFUSED = 0x80


async def _granted_qos(client: aiomqtt.Client, topic_filter: str) -> int:
    result = await client.subscribe(topic_filter, qos=1)
    code = result[0]
    return getattr(code, "value", code)


async def _denials(running: RunningPlatform, device_id: str) -> int:
    return (await device_detail(running, device_id))["acl_denials"]


@pytest.mark.parametrize(
    "topic_filter",
    [
        "devices/{b}/downlink/#",
        "devices/{b}/uplink/#",
        "devices/#",
        "#",
        "devices/+/downlink/#",
        "+/{a}/downlink/#",
        "devices/{a}/uplink/#",
        "$SYS/#",
    ],
)
async def test_subscriptions_beyond_own_downlink_are_refused_and_counted(
    running: RunningPlatform, topic_filter: str
) -> None:
    device_a, secret_a = await provisioned_device(running)
    device_b, _ = await provisioned_device(running)
    async with running.mqtt(device_a, secret_a) as client:
        assert await _granted_qos(client, topic_filter.format(a=device_a, b=device_b)) == REFUSED
    assert await eventually(lambda: _has_denials(running, device_a, 1))


async def _has_denials(running: RunningPlatform, device_id: str, expected: int) -> bool:
    return await _denials(running, device_id) >= expected


async def test_own_downlink_subscriptions_are_granted(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    async with running.mqtt(device_id, secret) as client:
        assert await _granted_qos(client, f"devices/{device_id}/downlink/#") == 1
        assert await _granted_qos(client, f"devices/{device_id}/downlink/payment") == 1
        assert await _granted_qos(client, f"devices/{device_id}/downlink/+/response") == 1
    assert await _denials(running, device_id) == 0


async def test_publishing_outside_own_uplink_is_dropped_and_counted(running: RunningPlatform) -> None:
    device_a, secret_a = await provisioned_device(running)
    device_b, secret_b = await provisioned_device(running)
    async with running.mqtt(device_b, secret_b) as victim, running.mqtt(device_a, secret_a) as attacker:
        await victim.subscribe(f"devices/{device_b}/downlink/#", qos=1)
        forbidden = [
            f"devices/{device_b}/uplink/heartbeat",  # impersonating B's uplink
            f"devices/{device_b}/downlink/payment",  # forging B's payment announcement
            f"devices/{device_a}/downlink/payment",  # downlinks come from the platform only
            "devices/broadcast",
            "elsewhere",
        ]
        for topic in forbidden:
            await attacker.publish(topic, b'{"message_id": "forged", "amount": 1}', qos=1)
        assert await first_message(victim, timeout=0.5) is None
    assert await eventually(lambda: _has_denials(running, device_a, len(forbidden)))
    assert await _denials(running, device_a) == len(forbidden)
    assert await _denials(running, device_b) == 0
    # nothing forged reached B's trace either (what A's uplinks left pending is written first)
    await running.platform.uplink_writes.flush()
    trace = await running.http.get(f"/admin/devices/{device_b}/mqtt-messages", headers=running.admin_headers)
    assert trace.json()["items"] == []


async def test_publishing_own_uplink_is_accepted_and_traced(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    async with running.mqtt(device_id, secret) as client:
        await client.publish(f"devices/{device_id}/uplink/heartbeat", b'{"message_id": "hb-1"}', qos=1)

    async def traced() -> bool:
        page = await running.http.get(f"/admin/devices/{device_id}/mqtt-messages", headers=running.admin_headers)
        return len(page.json()["items"]) == 1

    assert await eventually(traced)
    assert await _denials(running, device_id) == 0


async def test_denials_are_logged_with_the_device_id(
    running: RunningPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from qris_soundbox.core.logging import JsonFormatter

    device_id, secret = await provisioned_device(running)
    with caplog.at_level(logging.WARNING, logger="qris_soundbox.broker.acl"):
        async with running.mqtt(device_id, secret) as client:
            await client.subscribe("#", qos=1)
    records = [r for r in caplog.records if r.name == "qris_soundbox.broker.acl"]
    assert records
    line = JsonFormatter().format(records[-1])
    assert f'"device_id":"{device_id}"' in line and '"topic":"#"' in line
