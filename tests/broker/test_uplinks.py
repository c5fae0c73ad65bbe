"""Uplinks through the real broker: heartbeats recorded, bad payloads ignored, the broker unharmed."""

from __future__ import annotations

import asyncio
import struct

from tests.devices.helpers import device_detail, eventually, provisioned_device
from tests.support import RunningPlatform


async def _trace(running: RunningPlatform, device_id: str, **params: object) -> dict:
    await running.platform.uplink_writes.flush()  # the node writes its uplinks' trace in batches
    response = await running.http.get(
        f"/admin/devices/{device_id}/mqtt-messages", params=params, headers=running.admin_headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_mqtt_heartbeat_is_recorded_in_device_detail(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    heartbeat = b'{"battery_level": 77, "network_strength": 88, "firmware_version": "1.4.2", "charging": true}'
    async with running.mqtt(device_id, secret) as client:
        await client.publish(f"devices/{device_id}/uplink/heartbeat", heartbeat, qos=1)

        async def recorded() -> bool:
            # presence is written in batches (up to 0.1 s later), independently of the heartbeat
            detail = await device_detail(running, device_id)
            return detail["last_heartbeat_at"] is not None and detail["online"]

        assert await eventually(recorded)
        detail = await device_detail(running, device_id)
    assert detail["battery_level"] == 77
    assert detail["network_strength"] == 88
    assert detail["firmware_version"] == "1.4.2"
    assert detail["heartbeat"]["charging"] is True
    assert detail["health_summary"]["status"] == "healthy"
    assert detail["health_summary"]["score"] == 100


async def test_malformed_uplinks_are_ignored_and_the_broker_keeps_working(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    topic = f"devices/{device_id}/uplink/heartbeat"
    async with running.mqtt(device_id, secret) as client:
        await client.publish(topic, b"not json at all", qos=1)
        await client.publish(topic, b'{"battery_level": "full"}', qos=1)  # wrong type
        await client.publish(topic, b'{"battery_level": 250}', qos=1)  # out of range
        await client.publish(topic, b'{"unexpected": 1}', qos=1)  # unknown field
        await client.publish(topic, b'{"device_id": "dev_someone_else"}', qos=1)  # not this device
        await client.publish(topic, b"\xff\xfe\x00binary", qos=1)
        await client.publish(topic, b'{"battery_level": 5' + b" " * 100_000 + b"}", qos=1)  # oversized
        await client.publish(f"devices/{device_id}/uplink/unknown/thing", b"{}", qos=1)
        await client.publish(topic, b'{"battery_level": 42}', qos=1)  # finally a good one

        async def good_one_recorded() -> bool:
            return (await device_detail(running, device_id))["battery_level"] == 42

        assert await eventually(good_one_recorded)
    detail = await device_detail(running, device_id)
    assert detail["heartbeat"] == {"battery_level": 42}
    page = await _trace(running, device_id, direction="uplink", limit=200)
    assert len(page["items"]) == 9
    oversized = [item for item in page["items"] if item["payload_bytes"] > 100_000]
    assert oversized and oversized[0]["truncated"] and len(oversized[0]["payload"]) <= 4096
    # still serving devices
    other_id, other_secret = await provisioned_device(running)
    async with running.mqtt(other_id, other_secret):
        pass


async def test_trace_pages_newest_first(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    async with running.mqtt(device_id, secret) as client:
        for n in range(5):
            await client.publish(f"devices/{device_id}/uplink/heartbeat", b'{"message_id": "m%d"}' % n, qos=1)
            await asyncio.sleep(0.02)  # ids order by millisecond; uplinks are handled concurrently

        async def all_traced() -> bool:
            return len((await _trace(running, device_id))["items"]) == 5

        assert await eventually(all_traced)
    first = await _trace(running, device_id, limit=2)
    assert [i["message_id"] for i in first["items"]] == ["m4", "m3"]
    second = await _trace(running, device_id, limit=2, cursor=first["next_cursor"])
    assert [i["message_id"] for i in second["items"]] == ["m2", "m1"]
    third = await _trace(running, device_id, limit=2, cursor=second["next_cursor"])
    assert [i["message_id"] for i in third["items"]] == ["m0"] and third["next_cursor"] is None
    assert all(i["direction"] == "uplink" and i["qos"] == 1 for i in first["items"])


async def _raw(running: RunningPlatform, data: bytes, *, read: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection(running.mqtt_host, running.mqtt_port)
    try:
        writer.write(data)
        await writer.drain()
        if not read:
            return b""
        try:
            return await asyncio.wait_for(reader.read(64), 2)
        except (TimeoutError, ConnectionError):
            return b""
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


def _connect_packet(client_id: str, username: str, password: str, protocol: bytes = b"MQTT", level: int = 4) -> bytes:
    def s(value: bytes) -> bytes:
        return struct.pack("!H", len(value)) + value

    variable = s(protocol) + bytes([level, 0b1100_0010]) + struct.pack("!H", 30)
    payload = s(client_id.encode()) + s(username.encode()) + s(password.encode())
    body = variable + payload
    return bytes([0x10, len(body)]) + body


async def test_malformed_connect_bytes_do_not_crash_the_broker(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    await _raw(running, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await _raw(running, b"\x10\xff\xff\xff\xff\x7f")  # remaining length beyond the MQTT maximum
    await _raw(running, b"\x10\x05\x00\x04MQ")  # truncated CONNECT
    await _raw(running, _connect_packet(device_id, device_id, secret, protocol=b"MQXX"))
    await _raw(running, _connect_packet(device_id, device_id, secret, level=99))
    await _raw(running, b"\x30\x10devices/x/uplink")  # PUBLISH before CONNECT
    await _raw(running, bytes(range(256)) * 4)
    await _raw(running, b"\x10\x7f" + b"\x00" * 20, read=False)  # declares more than it sends, then hangs up
    # a valid device still gets in, through raw bytes and through a client library
    connack = await _raw(running, _connect_packet(device_id, device_id, secret))
    assert connack[:4] == b"\x20\x02\x00\x00"
    async with running.mqtt(device_id, secret):
        pass
