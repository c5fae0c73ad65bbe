"""Wrong ``X-Device-Secret`` guesses for one device are limited (issue 23, finding 6).

Before: 3,174 wrong secrets for one device in 15 s, all 401. Now past
``RATE_LIMIT_DEVICE_AUTH_MAX`` failures every attempt for that device id, the
right secret included (so a guess learns nothing), gets ``429`` with
``Retry-After`` until the window ends; then the right secret works again.
Both stores: counted in the process, and shared in PostgreSQL.

The shared store's windows are aligned on the epoch (every node agrees where
one starts), so the guesses start just after a boundary: started anywhere, a
boundary could fall between the third and fourth guess and reset the count.
"""

from __future__ import annotations

import time

import pytest

from tests.devices.helpers import eventually, provisioned_device
from tests.support import PlatformFactory, RunningPlatform

MAX_FAILURES = 3
WINDOW_S = 10


async def _heartbeat(running: RunningPlatform, device_id: str, secret: str) -> int:
    response = await running.http.post(
        "/device/heartbeat", headers={"X-Device-Id": device_id, "X-Device-Secret": secret}, json={}
    )
    return response.status_code


@pytest.mark.parametrize("store", ["memory", "postgres"])
async def test_wrong_device_secrets_are_limited_per_device_and_the_owner_comes_back(
    platform_factory: PlatformFactory, store: str
) -> None:
    running = await platform_factory.start(
        rate_limit_store=store,
        rate_limit_device_auth_max=MAX_FAILURES,
        rate_limit_device_auth_window_ms=WINDOW_S * 1000,
    )
    try:
        device_id, secret = await provisioned_device(running)
        other_id, other_secret = await provisioned_device(running)
        assert await eventually(_window_just_started, timeout=WINDOW_S + 5, interval=0.05)
        statuses = [await _heartbeat(running, device_id, "wrong-secret-guess") for _ in range(MAX_FAILURES + 2)]
        assert statuses == [401] * MAX_FAILURES + [429, 429]
        refused = await running.http.post(
            "/device/heartbeat", headers={"X-Device-Id": device_id, "X-Device-Secret": secret}, json={}
        )
        assert refused.status_code == 429, refused.text  # the right secret too: a guess learns nothing
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= WINDOW_S
        assert await _heartbeat(running, other_id, other_secret) == 200  # per device, not global
        # Never locked out for good: once the window ends the right secret works again.
        assert await eventually(lambda: _ok(running, device_id, secret), timeout=WINDOW_S + 15)
    finally:
        await platform_factory.stop(running)


async def _ok(running: RunningPlatform, device_id: str, secret: str) -> bool:
    return await _heartbeat(running, device_id, secret) == 200


async def _window_just_started() -> bool:
    return time.time() % WINDOW_S < 1
