"""Device models: the built-in catalogue and registering vendors' models."""

from __future__ import annotations

import pytest

from tests.support import RunningPlatform

CAPABILITY_FIELDS = {
    "screen",
    "dynamic_qr",
    "languages",
    "announcement_format",
    "max_text_length",
    "volume_min",
    "volume_max",
    "commands",
}


async def test_built_in_models_are_listed_with_their_capabilities(running: RunningPlatform) -> None:
    response = await running.http.get("/admin/device-models", headers=running.admin_headers)
    assert response.status_code == 200
    models = {m["id"]: m for m in response.json()["items"]}
    audio, screen = models["generic-audio"], models["generic-screen"]
    assert set(audio["capabilities"]) == CAPABILITY_FIELDS
    assert audio["builtin"] and screen["builtin"]
    assert audio["capabilities"]["screen"] is False and audio["capabilities"]["dynamic_qr"] is False
    assert audio["capabilities"]["announcement_format"] == "clips"
    assert audio["capabilities"]["languages"] == ["id", "en"]
    assert screen["capabilities"]["screen"] is True and screen["capabilities"]["dynamic_qr"] is True
    assert "set_volume" in screen["capabilities"]["commands"]


async def test_a_vendor_model_can_be_registered_and_used(running: RunningPlatform) -> None:
    body = {
        "id": "acme-sb1",
        "name": "ACME SB-1",
        "vendor": "ACME",
        "capabilities": {
            "screen": False,
            "dynamic_qr": False,
            "languages": ["id"],
            "announcement_format": "amount_only",
            "max_text_length": None,
            "volume_min": 1,
            "volume_max": 15,
            "commands": ["reboot", "set_volume"],
        },
    }
    created = await running.http.post("/admin/device-models", json=body, headers=running.admin_headers)
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "acme-sb1" and created.json()["builtin"] is False
    assert created.json()["capabilities"] == body["capabilities"]
    again = await running.http.post("/admin/device-models", json=body, headers=running.admin_headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "device_model_exists"
    device = await running.http.post(
        "/admin/devices", json={"serial_number": "ACME-0001", "model": "acme-sb1"}, headers=running.admin_headers
    )
    assert device.status_code == 201 and device.json()["model"] == "acme-sb1"
    one = await running.http.get("/admin/device-models/acme-sb1", headers=running.admin_headers)
    assert one.status_code == 200 and one.json()["vendor"] == "ACME"


@pytest.mark.parametrize(
    ("capabilities", "field"),
    [
        ({"screen": False, "dynamic_qr": True}, "capabilities.dynamic_qr"),
        ({"languages": ["id", "fr"]}, "capabilities.languages"),
        ({"volume_min": 10, "volume_max": 5}, "capabilities.volume_min"),
        ({"commands": ["self_destruct"]}, "capabilities.commands"),
    ],
)
async def test_inconsistent_capabilities_are_refused(running: RunningPlatform, capabilities: dict, field: str) -> None:
    body = {"id": "bad-model", "name": "Bad", "capabilities": capabilities}
    response = await running.http.post("/admin/device-models", json=body, headers=running.admin_headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [d["field"] for d in error["details"]]


@pytest.mark.parametrize(
    "body",
    [
        {"id": "x", "name": "too short id", "capabilities": {}},
        {"id": "ok-id", "name": "unknown capability", "capabilities": {"hologram": True}},
        {"id": "ok-id", "name": "bad format", "capabilities": {"announcement_format": "morse"}},
        {"id": "ok-id", "name": "bad volume", "capabilities": {"volume_max": 1000}},
        {"id": "ok-id", "name": "no caps"},
    ],
)
async def test_malformed_model_bodies_are_validation_errors(running: RunningPlatform, body: dict) -> None:
    response = await running.http.post("/admin/device-models", json=body, headers=running.admin_headers)
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"]["code"] == "validation_error"


async def test_model_routes_need_authentication(running: RunningPlatform) -> None:
    assert (await running.http.get("/admin/device-models")).status_code == 401
    response = await running.http.post("/admin/device-models", json={})
    assert response.status_code == 401
