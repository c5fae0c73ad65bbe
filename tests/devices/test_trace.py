"""The MQTT trace: downlinks recorded by publishers, pages, retention."""

from __future__ import annotations

from qris_soundbox.core.devices import trace
from tests.devices.helpers import register_device
from tests.support import RunningPlatform


async def test_record_downlink_is_listed_with_its_message_id(running: RunningPlatform) -> None:
    device = await register_device(running)
    db = running.platform.db
    async with db.transaction() as conn:
        await trace.record_downlinks(
            conn,
            [
                trace.downlink_row(
                    device_id=device["id"],
                    topic=f"devices/{device['id']}/downlink/payment",
                    payload={"message_id": "msg-1", "type": "payment", "amount": 25000},
                ),
                trace.downlink_row(
                    device_id=device["id"],
                    topic=f"devices/{device['id']}/downlink/config",
                    payload=b"x" * 10_000,
                    qos=0,
                    message_id="msg-2",
                ),
            ],
        )
    response = await running.http.get(
        f"/admin/devices/{device['id']}/mqtt-messages", params={"direction": "downlink"}, headers=running.admin_headers
    )
    items = response.json()["items"]
    by_id = {i["message_id"]: i for i in items}
    assert set(by_id) == {"msg-1", "msg-2"}
    assert by_id["msg-1"]["qos"] == 1 and '"amount":25000' in by_id["msg-1"]["payload"]
    assert by_id["msg-2"]["truncated"] and by_id["msg-2"]["payload_bytes"] == 10_000
    assert len(by_id["msg-2"]["payload"]) == trace.TRACE_PAYLOAD_LIMIT
    uplinks = await running.http.get(
        f"/admin/devices/{device['id']}/mqtt-messages", params={"direction": "uplink"}, headers=running.admin_headers
    )
    assert uplinks.json()["items"] == []


async def test_prune_keeps_only_the_retention_window(running: RunningPlatform) -> None:
    device = await register_device(running)
    db = running.platform.db
    async with db.transaction() as conn:
        await trace.record_downlinks(
            conn,
            [
                trace.downlink_row(device_id=device["id"], topic="t", payload=b"{}", message_id=message_id)
                for message_id in ("old", "new")
            ],
        )
        await conn.execute(
            "UPDATE device_mqtt_messages SET created_at = now() - interval '15 days' WHERE message_id = 'old'"
        )
    removed = await trace.prune(db, retention_days=14)
    assert removed >= 1
    left = await db.pool.fetch("SELECT message_id FROM device_mqtt_messages WHERE device_id = $1", device["id"])
    assert [r["message_id"] for r in left] == ["new"]


async def test_prune_job_is_scheduled(running: RunningPlatform) -> None:
    from qris_soundbox.core.jobs import scheduled_jobs

    assert "devices.prune_trace" in [job.name for job in scheduled_jobs(running.platform)]
