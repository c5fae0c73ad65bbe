"""The credential verifier: one row lookup for checks waiting together, one hash per secret,
one verifier per process shared by the broker and the HTTP routes."""

from __future__ import annotations

import asyncio

from qris_soundbox.core.devices.verifier import CredentialVerifier
from tests.devices.helpers import admin_post, provisioned_device
from tests.support import RunningPlatform


async def test_checks_waiting_together_each_get_their_own_answer(running: RunningPlatform) -> None:
    """Concurrent checks share one row lookup (a reconnect storm); each still gets its device's verdict."""
    (first, first_secret), (second, second_secret), (disabled, disabled_secret) = [
        await provisioned_device(running) for _ in range(3)
    ]
    assert (await admin_post(running, f"/admin/devices/{disabled}/disable", {"reason": "test"})).status_code == 200
    verifier = CredentialVerifier(running.platform.db)  # its own cache: every check below reads and hashes
    try:
        results = await asyncio.gather(
            verifier.verify(first, first_secret),
            verifier.verify(second, "not-the-secret"),
            verifier.verify(second, second_secret),
            verifier.verify(first, first_secret),  # the same device twice in one lookup
            verifier.verify(disabled, disabled_secret),
            verifier.verify("dev_unknown", first_secret),
        )
    finally:
        verifier.close()
    assert [r.device_id if r else None for r in results] == [first, None, second, first, None, None]


async def test_a_retry_while_its_secret_is_being_hashed_waits_for_that_hash(running: RunningPlatform) -> None:
    """A device that gave up waiting and connects again must not cost a second argon2 run."""
    device_id, secret = await provisioned_device(running)
    verifier = CredentialVerifier(running.platform.db)
    try:
        first, retry, wrong = await asyncio.gather(
            verifier.verify(device_id, secret),
            verifier.verify(device_id, secret),
            verifier.verify(device_id, "not-the-secret"),
        )
    finally:
        verifier.close()
    assert first is not None and retry is not None and wrong is None
    assert (verifier.hashed, verifier.cached) == (1, 1)


async def test_the_broker_and_the_device_routes_share_one_verifier(running: RunningPlatform) -> None:
    """A secret checked by the broker is not hashed again when the same device calls /device/*."""
    device_id, secret = await provisioned_device(running)
    verifier = running.platform.device_verifier
    async with running.mqtt(device_id, secret):
        pass
    hashed, cached = verifier.hashed, verifier.cached
    response = await running.http.post(
        "/device/heartbeat", json={}, headers={"X-Device-Id": device_id, "X-Device-Secret": secret}
    )
    assert response.status_code == 200, response.text
    assert (verifier.hashed, verifier.cached) == (hashed, cached + 1)
