"""Presence from broker events and the health summary built on it."""

from __future__ import annotations

from tests.devices.helpers import device_detail, eventually, provisioned_device
from tests.support import RunningPlatform


async def test_connect_and_disconnect_update_online_and_last_seen(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    before = await device_detail(running, device_id)
    assert before["online"] is False and before["last_seen_at"] is None
    assert before["health_summary"]["status"] == "offline"

    async def online_is(value: bool) -> bool:
        return (await device_detail(running, device_id))["online"] is value

    async with running.mqtt(device_id, secret):
        assert await eventually(lambda: online_is(True))
        connected = await device_detail(running, device_id)
        assert connected["last_seen_at"] is not None
        # online but no heartbeat yet: usable, not healthy
        assert connected["health_summary"]["status"] == "degraded"
        assert connected["health_summary"]["reasons"] == ["never_heartbeat"]
        listed = await running.http.get("/admin/devices", params={"online": "true"}, headers=running.admin_headers)
        assert device_id in [d["id"] for d in listed.json()["items"]]
    assert await eventually(lambda: online_is(False))
    after = await device_detail(running, device_id)
    assert after["health_summary"]["status"] == "offline"
    assert "offline" in after["health_summary"]["reasons"]
    assert after["health_summary"]["age_seconds"] is not None


async def test_low_battery_and_weak_signal_lower_the_score(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    async with running.mqtt(device_id, secret) as client:
        await client.publish(
            f"devices/{device_id}/uplink/heartbeat", b'{"battery_level": 8, "network_strength": 20}', qos=1
        )

        async def recorded() -> bool:
            detail = await device_detail(running, device_id)
            return detail["online"] and detail["battery_level"] == 8

        assert await eventually(recorded)
        summary = (await device_detail(running, device_id))["health_summary"]
    assert summary["reasons"] == ["battery_critical", "signal_weak"]
    assert summary["score"] == 60
    assert summary["status"] == "degraded"


async def test_stopping_the_broker_marks_its_devices_offline(platform_factory) -> None:  # type: ignore[no-untyped-def]
    own = await platform_factory.start()
    device_id, secret = await provisioned_device(own)
    async with own.mqtt(device_id, secret):

        async def online() -> bool:
            return (await device_detail(own, device_id))["online"]

        assert await eventually(online)
        await platform_factory.stop(own)
    # read through another process's API sharing the database
    other = await platform_factory.start(roles=frozenset({"api"}))
    assert (await device_detail(other, device_id))["online"] is False
