"""Shared steps of the config and command tests: a device online over real MQTT, admin calls, outbox rows."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt

from qris_soundbox.core.ids import new_id
from tests.devices.helpers import first_message
from tests.support import RunningPlatform


@asynccontextmanager
async def online_device(running: RunningPlatform, device_id: str, secret: str) -> AsyncIterator[aiomqtt.Client]:
    """The device connected and subscribed to its downlinks, as a real soundbox does on boot."""
    async with running.mqtt(device_id, secret) as client:
        await client.subscribe(f"devices/{device_id}/downlink/#", qos=1)
        yield client


async def next_downlink(client: aiomqtt.Client, timeout: float = 5.0) -> tuple[str, dict[str, Any]]:
    message = await first_message(client, timeout)
    assert message is not None, "no downlink arrived"
    return message.topic.value, json.loads(bytes(message.payload))


async def publish(client: aiomqtt.Client, device_id: str, suffix: str, body: Any) -> None:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    await client.publish(f"devices/{device_id}/uplink/{suffix}", payload, qos=1)


async def register_model(running: RunningPlatform, **capabilities: Any) -> str:
    model_id = f"test-{new_id('m')[-8:].lower()}"
    response = await running.http.post(
        "/admin/device-models",
        json={"id": model_id, "name": "Test model", "capabilities": capabilities},
        headers=running.admin_headers,
    )
    assert response.status_code == 201, response.text
    return model_id


async def admin(running: RunningPlatform, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    return await running.http.request(method, path, json=body, headers=running.admin_headers, **kwargs)


def device_headers(device_id: str, secret: str) -> dict[str, str]:
    return {"X-Device-Id": device_id, "X-Device-Secret": secret}


async def outbox_rows(running: RunningPlatform, device_id: str, kind: str) -> list[dict[str, Any]]:
    rows = await running.platform.db.pool.fetch(
        "SELECT message_id, status, attempts, payload, last_error FROM device_outbox"
        " WHERE device_id = $1 AND kind = $2 ORDER BY id",
        device_id,
        kind,
    )
    return [dict(row) for row in rows]


async def audit_actions(running: RunningPlatform, device_id: str) -> list[str]:
    rows = await running.platform.db.pool.fetch(
        "SELECT action FROM audit_logs WHERE entity_type = 'device' AND entity_id = $1 ORDER BY id", device_id
    )
    return [row["action"] for row in rows]


async def uplink_topics(running: RunningPlatform, device_id: str) -> list[str]:
    await running.platform.uplink_writes.flush()  # the node writes its uplinks' trace in batches
    response = await admin(running, "GET", f"/admin/devices/{device_id}/mqtt-messages?direction=uplink&limit=200")
    assert response.status_code == 200, response.text
    return [item["topic"] for item in response.json()["items"]]
