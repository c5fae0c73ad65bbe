"""``/device/*`` authentication with the device's own secret (the legacy shared token:
tests/adversarial/test_legacy_device_token.py)."""

from __future__ import annotations

from tests.devices.helpers import admin_post, device_detail, provisioned_device
from tests.support import RunningPlatform


def _secret_headers(device_id: str, secret: str) -> dict[str, str]:
    return {"X-Device-Id": device_id, "X-Device-Secret": secret}


async def test_heartbeat_with_device_secret_is_recorded(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    response = await running.http.post(
        "/device/heartbeat",
        json={
            "device_id": device_id,
            "timestamp": "2026-05-28T00:00:00.000Z",
            "network_strength": 88,
            "battery_level": 77,
        },
        headers=_secret_headers(device_id, secret),
    )
    assert response.status_code == 200, response.text
    assert response.json()["device_id"] == device_id
    detail = await device_detail(running, device_id)
    assert detail["battery_level"] == 77 and detail["network_strength"] == 88
    assert detail["last_heartbeat_at"] is not None
    assert response.json()["health_summary"] == detail["health_summary"]


async def test_wrong_missing_or_mismatched_credentials_are_refused(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    other_id, other_secret = await provisioned_device(running)
    cases = [
        {},
        {"X-Device-Id": device_id},
        {"X-Device-Secret": secret},
        _secret_headers(device_id, secret + "x"),
        _secret_headers(device_id, other_secret),  # another device's secret
        _secret_headers("dev_unknown", secret),
        {"Authorization": "Bearer not-the-device-token", "X-Device-Id": device_id},
        {"Authorization": "Bearer test-admin-token", "X-Device-Id": device_id},  # an admin token is not a device
    ]
    for headers in cases:
        response = await running.http.post("/device/heartbeat", json={}, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["error"]["code"] == "unauthorized"
    mismatch = await running.http.post(
        "/device/heartbeat", json={"device_id": other_id}, headers=_secret_headers(device_id, secret)
    )
    assert mismatch.status_code == 403 and mismatch.json()["error"]["code"] == "forbidden"


async def test_disabled_device_secret_is_refused_over_http(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    await admin_post(running, f"/admin/devices/{device_id}/disable")
    response = await running.http.post("/device/heartbeat", json={}, headers=_secret_headers(device_id, secret))
    assert response.status_code == 401


async def test_malformed_heartbeat_is_a_validation_error(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    for body in ({"battery_level": 101}, {"battery_level": "full"}, {"surprise": True}):
        response = await running.http.post("/device/heartbeat", json=body, headers=_secret_headers(device_id, secret))
        assert response.status_code in (400, 422), (body, response.text)
        assert response.json()["error"]["code"] == "validation_error"
    broken = await running.http.post(
        "/device/heartbeat",
        content=b"{not json",
        headers=_secret_headers(device_id, secret) | {"Content-Type": "application/json"},
    )
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "validation_error"
