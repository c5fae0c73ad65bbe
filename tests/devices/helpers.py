"""Shared steps of the device tests: devices and credentials by HTTP, waiting for MQTT messages."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt

from qris_soundbox.core.ids import new_id
from tests.support import RunningPlatform

_serials = itertools.count(1)


async def register_device(running: RunningPlatform, model: str = "generic-audio") -> dict[str, Any]:
    response = await running.http.post(
        "/admin/devices",
        json={"serial_number": f"SN-{new_id('t')[-10:]}-{next(_serials)}", "model": model},
        headers=running.admin_headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def rotate(running: RunningPlatform, device_id: str) -> dict[str, Any]:
    response = await running.http.post(f"/admin/devices/{device_id}/credentials/rotate", headers=running.admin_headers)
    assert response.status_code == 200, response.text
    return response.json()


async def provisioned_device(running: RunningPlatform, model: str = "generic-audio") -> tuple[str, str]:
    """A registered device with a fresh credential: (device id, secret)."""
    device = await register_device(running, model)
    issued = await rotate(running, device["id"])
    return device["id"], issued["mqtt_password"]


async def device_detail(running: RunningPlatform, device_id: str) -> dict[str, Any]:
    await running.platform.uplink_writes.flush()  # heartbeats (MQTT and HTTP) are written in batches
    response = await running.http.get(f"/admin/devices/{device_id}", headers=running.admin_headers)
    assert response.status_code == 200, response.text
    return response.json()


async def admin_post(running: RunningPlatform, path: str, body: Any = None) -> Any:
    return await running.http.post(path, json=body, headers=running.admin_headers)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0, interval: float = 0.05) -> bool:
    """Poll ``check`` until it is true or ``timeout`` passes; returns the last result. The default deadline is
    generous: it costs nothing when the check passes, and the suite runs on loaded 2-core machines."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():
            return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(interval)


async def first_message(client: aiomqtt.Client, timeout: float) -> aiomqtt.Message | None:
    """The next message this client receives, or None if none comes within ``timeout``."""

    async def first() -> aiomqtt.Message:
        async for message in client.messages:
            return message
        raise AssertionError("message stream ended")

    try:
        return await asyncio.wait_for(first(), timeout)
    except TimeoutError:
        return None
