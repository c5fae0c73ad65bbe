"""Device authentication at the broker: who may connect, and what rotation does to live sessions."""

from __future__ import annotations

import asyncio
import time

import aiomqtt
import pytest
from aiomqtt.exceptions import MqttConnectError

from tests.broker.raw_client import WAIT_S
from tests.devices.helpers import (
    admin_post,
    device_detail,
    eventually,
    first_message,
    provisioned_device,
    register_device,
    rotate,
)
from tests.support import PlatformFactory, RunningPlatform


async def _refused(
    running: RunningPlatform, username: str | None, password: str | None, client_id: str | None = None
) -> bool:
    try:
        async with running.mqtt(username, password, client_id=client_id):
            return False
    except MqttConnectError as exc:
        # paho maps MQTT 3.1.1 CONNACK 5 ("not authorized") to reason code 135
        return "Not authorized" in str(exc)


async def _wait_disconnected(client: aiomqtt.Client, timeout: float) -> float:
    """Seconds until the broker closes this client's connection (raises TimeoutError if it does not)."""
    started = time.monotonic()

    async def next_message() -> None:
        async for _ in client.messages:
            pass

    with pytest.raises(aiomqtt.MqttError):
        await asyncio.wait_for(next_message(), timeout)
    return time.monotonic() - started


async def test_right_secret_connects_and_can_use_own_topics(running: RunningPlatform) -> None:
    """Observed end to end: a PUBACK proves nothing (a refused publish is acknowledged too), so the platform must
    have taken the heartbeat, and a downlink the platform sends must reach the subscription."""
    device_id, secret = await provisioned_device(running)
    async with running.mqtt(device_id, secret) as client:
        await client.subscribe(f"devices/{device_id}/downlink/#", qos=1)
        await client.publish(f"devices/{device_id}/uplink/heartbeat", b'{"battery_level": 77}', qos=1)

        async def heartbeat_taken() -> bool:
            return (await device_detail(running, device_id))["battery_level"] == 77

        assert await eventually(heartbeat_taken, timeout=WAIT_S)
        sent = await admin_post(running, f"/admin/devices/{device_id}/commands", {"type": "play_test_sound"})
        assert sent.status_code == 201, sent.text
        message = await first_message(client, timeout=WAIT_S)
        assert message is not None and message.topic.matches(f"devices/{device_id}/downlink/command")


async def test_wrong_secret_is_refused(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    assert await _refused(running, device_id, secret[:-2] + "xx")
    assert await _refused(running, device_id, "")


async def test_unknown_device_is_refused(running: RunningPlatform) -> None:
    assert await _refused(running, "dev_01HZZZZZZZZZZZZZZZZZZZZZZZ", "whatever-secret")
    assert await _refused(running, "not-a-device", "whatever-secret")


async def test_device_without_credential_is_refused(running: RunningPlatform) -> None:
    device = await register_device(running)
    assert device["status"] == "registered"
    assert await _refused(running, device["id"], "no-credential-yet")


async def test_disabled_and_retired_devices_are_refused(running: RunningPlatform) -> None:
    disabled_id, disabled_secret = await provisioned_device(running)
    assert (await admin_post(running, f"/admin/devices/{disabled_id}/disable", {"reason": "lost"})).status_code == 200
    assert await _refused(running, disabled_id, disabled_secret)
    # enabling gives the same secret its access back
    assert (await admin_post(running, f"/admin/devices/{disabled_id}/enable")).status_code == 200
    async with running.mqtt(disabled_id, disabled_secret):
        pass

    retired_id, retired_secret = await provisioned_device(running)
    assert (await admin_post(running, f"/admin/devices/{retired_id}/retire")).status_code == 200
    assert await _refused(running, retired_id, retired_secret)


async def test_client_id_other_than_username_is_refused(running: RunningPlatform) -> None:
    device_a, secret_a = await provisioned_device(running)
    device_b, _ = await provisioned_device(running)
    assert await _refused(running, device_a, secret_a, client_id=device_b)
    assert await _refused(running, device_a, secret_a, client_id="something-else")


async def test_rotation_refuses_old_secret_and_drops_its_live_session(running: RunningPlatform) -> None:
    device_id, old_secret = await provisioned_device(running)
    async with running.mqtt(device_id, old_secret) as client:
        await client.subscribe(f"devices/{device_id}/downlink/#", qos=1)
        new_secret = (await rotate(running, device_id))["mqtt_password"]
        elapsed = await _wait_disconnected(client, timeout=1.0)
    assert elapsed < 1.0
    assert await _refused(running, device_id, old_secret)
    async with running.mqtt(device_id, new_secret):
        pass


async def test_disable_drops_the_live_session(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    async with running.mqtt(device_id, secret) as client:
        assert (await admin_post(running, f"/admin/devices/{device_id}/disable")).status_code == 200
        await _wait_disconnected(client, timeout=1.0)


async def test_rotation_in_an_api_only_process_reaches_the_broker(
    running: RunningPlatform, platform_factory: PlatformFactory
) -> None:
    api_only = await platform_factory.start(roles=frozenset({"api"}))
    device_id, old_secret = await provisioned_device(running)
    async with running.mqtt(device_id, old_secret) as client:
        response = await api_only.http.post(
            f"/admin/devices/{device_id}/credentials/rotate", headers=api_only.admin_headers
        )
        assert response.status_code == 200
        await _wait_disconnected(client, timeout=1.0)
    assert await _refused(running, device_id, old_secret)
    async with running.mqtt(device_id, response.json()["mqtt_password"]):
        pass
    await platform_factory.stop(api_only)


async def test_hundred_devices_connect_concurrently(running: RunningPlatform) -> None:
    devices = [await provisioned_device(running) for _ in range(100)]

    async def connect(device_id: str, secret: str) -> bool:
        async with running.mqtt(device_id, secret) as client:
            await client.subscribe(f"devices/{device_id}/downlink/#", qos=1)
        return True

    results = await asyncio.gather(*(connect(d, s) for d, s in devices), return_exceptions=True)
    failures = [r for r in results if r is not True]
    assert failures == []


async def test_reconnect_uses_cached_verification(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    verifier = running.platform.device_verifier
    hashed = verifier.hashed
    async with running.mqtt(device_id, secret):
        pass
    assert device_id in verifier._verified
    assert verifier.hashed == hashed + 1
    cached = verifier.cached
    async with running.mqtt(device_id, secret):
        pass
    # the second connect is served from the cache: counted as such, no second hash
    assert (verifier.hashed, verifier.cached) == (hashed + 1, cached + 1)
    # after a rotation the cached entry no longer matches the stored fingerprint
    await rotate(running, device_id)
    assert await eventually(lambda: _not_cached(verifier, device_id))
    assert await _refused(running, device_id, secret)


async def _not_cached(verifier, device_id: str) -> bool:  # type: ignore[no-untyped-def]
    return device_id not in verifier._verified
