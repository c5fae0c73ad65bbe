"""``POST /device/heartbeat``: answered from one read of the device's state, written with the process's
MQTT heartbeats in batches (``core.devices.presence.HttpHeartbeats``); credentials still checked on every
request, a rate limit per device."""

from __future__ import annotations

import asyncio

import pytest

from qris_soundbox.core.devices.errors import DeviceNotFound
from qris_soundbox.core.devices.presence import HttpHeartbeats
from qris_soundbox.core.devices.schemas import Heartbeat
from qris_soundbox.core.devices.uplink_writes import UplinkWrites
from tests.devices.helpers import admin_post, device_detail, provisioned_device, rotate
from tests.support import PlatformFactory, RunningPlatform


def _headers(device_id: str, secret: str) -> dict[str, str]:
    return {"X-Device-Id": device_id, "X-Device-Secret": secret}


async def test_concurrent_heartbeats_each_get_their_own_device_answer_and_row(running: RunningPlatform) -> None:
    """Heartbeats arriving together share one state read and one write; each answer and row is its device's."""
    devices = [await provisioned_device(running) for _ in range(6)]
    answers = await asyncio.gather(
        *(
            running.http.post(
                "/device/heartbeat",
                json={"battery_level": 10 + index, "network_strength": 90, "firmware_version": f"2.0.{index}"},
                headers=_headers(device_id, secret),
            )
            for index, (device_id, secret) in enumerate(devices)
        )
    )
    for index, ((device_id, _), answer) in enumerate(zip(devices, answers, strict=True)):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["device_id"] == device_id
        # Battery 10..15 %: the answer already counts this heartbeat (battery_critical below 10, low below 20).
        assert "battery_low" in body["health_summary"]["reasons"], body
        detail = await device_detail(running, device_id)  # waits for the batched write
        assert (detail["battery_level"], detail["firmware_version"]) == (10 + index, f"2.0.{index}")
        assert detail["last_heartbeat_at"] is not None
        assert body["health_summary"] == detail["health_summary"]


async def test_a_heartbeat_leaves_what_it_does_not_carry_and_the_answer_says_so(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    first = await running.http.post(
        "/device/heartbeat", json={"battery_level": 5, "network_strength": 10}, headers=_headers(device_id, secret)
    )
    assert first.status_code == 200, first.text
    await device_detail(running, device_id)  # written
    second = await running.http.post("/device/heartbeat", json={"uptime_s": 60}, headers=_headers(device_id, secret))
    assert second.status_code == 200, second.text
    reasons = second.json()["health_summary"]["reasons"]
    assert "battery_critical" in reasons and "signal_very_weak" in reasons, reasons
    detail = await device_detail(running, device_id)
    assert (detail["battery_level"], detail["network_strength"]) == (5, 10)
    assert detail["heartbeat"] == {"uptime_s": 60}


async def test_a_rotated_or_retired_device_is_refused_at_once(running: RunningPlatform) -> None:
    """No flush, no wait between the change and the refusal: every heartbeat reads the credential row."""
    device_id, secret = await provisioned_device(running)
    assert (
        await running.http.post("/device/heartbeat", json={}, headers=_headers(device_id, secret))
    ).status_code == 200
    new_secret = (await rotate(running, device_id))["mqtt_password"]
    old = await running.http.post("/device/heartbeat", json={}, headers=_headers(device_id, secret))
    assert old.status_code == 401, old.text
    assert (
        await running.http.post("/device/heartbeat", json={}, headers=_headers(device_id, new_secret))
    ).status_code == 200
    assert (await admin_post(running, f"/admin/devices/{device_id}/retire")).status_code == 200
    retired = await running.http.post("/device/heartbeat", json={}, headers=_headers(device_id, new_secret))
    assert retired.status_code == 401 and retired.json()["error"]["code"] == "unauthorized"


async def test_a_heartbeat_answered_before_the_device_is_retired_is_not_written_after(running: RunningPlatform) -> None:
    """The batched write records heartbeats of registered and active devices only, as the answer's read did."""
    device_id, _ = await provisioned_device(running)
    writes = UplinkWrites(running.platform.db, flush_after_s=60)  # flushed by hand below
    heartbeats = HttpHeartbeats(running.platform.db, writes)
    try:
        answer = await heartbeats.record(device_id, Heartbeat(battery_level=33))
        assert answer.device_id == device_id
        assert (await admin_post(running, f"/admin/devices/{device_id}/retire")).status_code == 200
        assert await writes.flush()
        detail = await device_detail(running, device_id)
        assert detail["status"] == "retired"
        assert detail["battery_level"] is None and detail["last_heartbeat_at"] is None
        with pytest.raises(DeviceNotFound):
            await heartbeats.record(device_id, Heartbeat())
    finally:
        heartbeats.close()
        await writes.close()


async def test_heartbeats_are_rate_limited_per_device(platform_factory: PlatformFactory) -> None:
    limited = await platform_factory.start(rate_limit_device_max=3)
    device_id, secret = await provisioned_device(limited)
    other_id, other_secret = await provisioned_device(limited)
    codes = [
        (await limited.http.post("/device/heartbeat", json={}, headers=_headers(device_id, secret))).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429], codes
    refused = await limited.http.post("/device/heartbeat", json={}, headers=_headers(device_id, secret))
    assert refused.json()["error"]["code"] == "rate_limited" and "retry-after" in refused.headers
    # Another device has its own budget.
    other = await limited.http.post("/device/heartbeat", json={}, headers=_headers(other_id, other_secret))
    assert other.status_code == 200, other.text
