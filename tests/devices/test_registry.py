"""The device registry over HTTP: register, list, bind, disable, retire — and the audit trail."""

from __future__ import annotations

from tests.devices.helpers import admin_post, device_detail, provisioned_device, register_device, rotate
from tests.onboarding import onboarded_terminal
from tests.support import RunningPlatform


async def test_register_answers_201_with_a_registered_device(running: RunningPlatform) -> None:
    response = await admin_post(running, "/admin/devices", {"serial_number": "SB-REG-1", "model": "generic-screen"})
    assert response.status_code == 201, response.text
    device = response.json()
    assert device["id"].startswith("dev_") and device["status"] == "registered"
    assert device["model"] == "generic-screen" and device["terminal_id"] is None
    assert device["credential"] == {"fingerprint": None, "rotated_at": None}
    assert device["mqtt_username"] == device["id"]
    assert device["health_summary"] == {
        "status": "unprovisioned",
        "score": 0,
        "age_seconds": None,
        "reasons": ["no_credential"],
    }
    assert (await device_detail(running, device["id"]))["serial_number"] == "SB-REG-1"


async def test_register_refuses_duplicates_unknown_models_and_bad_bodies(running: RunningPlatform) -> None:
    await admin_post(running, "/admin/devices", {"serial_number": "SB-DUP-1", "model": "generic-audio"})
    duplicate = await admin_post(running, "/admin/devices", {"serial_number": "SB-DUP-1", "model": "generic-audio"})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "serial_number_taken"
    unknown = await admin_post(running, "/admin/devices", {"serial_number": "SB-X", "model": "no-such-model"})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_device_model"
    for body in (
        {"serial_number": "SB-Y"},
        {"serial_number": "", "model": "generic-audio"},
        {"serial_number": "SB-Z", "model": "generic-audio", "extra": 1},
        [1, 2],
    ):
        response = await admin_post(running, "/admin/devices", body)
        assert response.status_code in (400, 422), (body, response.text)
        assert response.json()["error"]["code"] == "validation_error"


async def test_unknown_device_is_404(running: RunningPlatform) -> None:
    for method, path in [
        ("GET", "/admin/devices/dev_nope"),
        ("POST", "/admin/devices/dev_nope/bind"),
        ("POST", "/admin/devices/dev_nope/credentials/rotate"),
        ("GET", "/admin/devices/dev_nope/mqtt-messages"),
    ]:
        body = {"terminal_id": "trm_x"} if path.endswith("bind") else None
        response = await running.http.request(method, path, json=body, headers=running.admin_headers)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "not_found"


async def test_bind_unbind_and_one_soundbox_per_terminal(running: RunningPlatform) -> None:
    place = await onboarded_terminal(running)
    first = await register_device(running)
    second = await register_device(running)
    bound = await admin_post(running, f"/admin/devices/{first['id']}/bind", {"terminal_id": place["terminal_id"]})
    assert bound.status_code == 200, bound.text
    assert bound.json()["terminal_id"] == place["terminal_id"]
    assert bound.json()["merchant_id"] == place["merchant_id"] and bound.json()["outlet_id"] == place["outlet_id"]

    occupied = await admin_post(running, f"/admin/devices/{second['id']}/bind", {"terminal_id": place["terminal_id"]})
    assert occupied.status_code == 409 and occupied.json()["error"]["code"] == "terminal_occupied"
    assert occupied.json()["error"]["details"]["device_id"] == first["id"]

    elsewhere = await onboarded_terminal(running)
    again = await admin_post(running, f"/admin/devices/{first['id']}/bind", {"terminal_id": elsewhere["terminal_id"]})
    assert again.status_code == 409 and again.json()["error"]["code"] == "device_already_bound"
    assert again.json()["error"]["details"]["terminal_id"] == place["terminal_id"]
    assert place["terminal_id"] in again.json()["error"]["message"]

    missing = await admin_post(running, f"/admin/devices/{second['id']}/bind", {"terminal_id": "trm_missing"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "terminal_not_found"

    unbound = await admin_post(running, f"/admin/devices/{first['id']}/unbind")
    assert unbound.status_code == 200 and unbound.json()["terminal_id"] is None
    moved = await admin_post(running, f"/admin/devices/{second['id']}/bind", {"terminal_id": place["terminal_id"]})
    assert moved.status_code == 200


async def test_status_lifecycle(running: RunningPlatform) -> None:
    device = await register_device(running)
    device_id = device["id"]
    await rotate(running, device_id)
    assert (await device_detail(running, device_id))["status"] == "active"
    disabled = await admin_post(running, f"/admin/devices/{device_id}/disable", {"reason": "reported stolen"})
    assert disabled.json()["status"] == "disabled" and disabled.json()["disabled_reason"] == "reported stolen"
    assert disabled.json()["health_summary"]["status"] == "disabled"
    enabled = await admin_post(running, f"/admin/devices/{device_id}/enable")
    assert enabled.json()["status"] == "active" and enabled.json()["disabled_reason"] is None

    place = await onboarded_terminal(running)
    await admin_post(running, f"/admin/devices/{device_id}/bind", {"terminal_id": place["terminal_id"]})
    retired = await admin_post(running, f"/admin/devices/{device_id}/retire")
    body = retired.json()
    assert body["status"] == "retired" and body["terminal_id"] is None and body["retired_at"] is not None
    assert body["credential"]["fingerprint"] is None
    for path, payload in [
        ("enable", None),
        ("disable", None),
        ("bind", {"terminal_id": place["terminal_id"]}),
        ("credentials/rotate", None),
    ]:
        response = await admin_post(running, f"/admin/devices/{device_id}/{path}", payload)
        assert response.status_code == 409, (path, response.text)
        assert response.json()["error"]["code"] == "invalid_state"


async def test_disabled_device_cannot_be_bound(running: RunningPlatform) -> None:
    device = await register_device(running)
    await admin_post(running, f"/admin/devices/{device['id']}/disable")
    place = await onboarded_terminal(running)
    response = await admin_post(running, f"/admin/devices/{device['id']}/bind", {"terminal_id": place["terminal_id"]})
    assert response.status_code == 409 and response.json()["error"]["code"] == "invalid_state"


async def test_list_filters_and_pages(running: RunningPlatform) -> None:
    place = await onboarded_terminal(running)
    screen = await register_device(running, "generic-screen")
    await admin_post(running, f"/admin/devices/{screen['id']}/bind", {"terminal_id": place["terminal_id"]})
    created = [await register_device(running) for _ in range(3)]

    async def ids(**params: object) -> list[str]:
        response = await running.http.get("/admin/devices", params=params, headers=running.admin_headers)
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["items"]]

    assert await ids(merchant_id=place["merchant_id"]) == [screen["id"]]
    assert await ids(terminal_id=place["terminal_id"]) == [screen["id"]]
    assert screen["id"] in await ids(model="generic-screen", limit=200)
    assert not set(await ids(model="generic-screen", limit=200)) & {d["id"] for d in created}
    assert {d["id"] for d in created} <= set(await ids(status="registered", limit=200))

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await running.http.get("/admin/devices", params=params, headers=running.admin_headers)).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
    assert {d["id"] for d in created} | {screen["id"]} <= set(seen)

    for bad in ({"limit": 0}, {"limit": 1000}, {"status": "sleeping"}, {"online": "maybe"}):
        response = await running.http.get("/admin/devices", params=bad, headers=running.admin_headers)
        assert response.status_code in (400, 422), bad
        assert response.json()["error"]["code"] == "validation_error"


async def test_admin_writes_are_audited(running: RunningPlatform) -> None:
    device_id, _ = await provisioned_device(running)
    place = await onboarded_terminal(running)
    await admin_post(running, f"/admin/devices/{device_id}/bind", {"terminal_id": place["terminal_id"]})
    await admin_post(running, f"/admin/devices/{device_id}/unbind")
    await admin_post(running, f"/admin/devices/{device_id}/disable")
    await admin_post(running, f"/admin/devices/{device_id}/enable")
    await admin_post(running, f"/admin/devices/{device_id}/retire")
    rows = await running.platform.db.pool.fetch(
        "SELECT action, actor_type, actor_id, request_id, merchant_id FROM audit_logs WHERE entity_id = $1 ORDER BY id",
        device_id,
    )
    assert [r["action"] for r in rows] == [
        "device.create",
        "device.credential.rotate",
        "device.bind",
        "device.unbind",
        "device.disable",
        "device.enable",
        "device.retire",
    ]
    assert all(r["actor_type"] == "admin" and r["request_id"] for r in rows)
    assert rows[2]["merchant_id"] == place["merchant_id"]


async def test_device_routes_need_the_right_permission(running: RunningPlatform) -> None:
    assert (await running.http.get("/admin/devices")).status_code == 401
    response = await running.http.post(
        "/admin/devices",
        json={"serial_number": "S", "model": "generic-audio"},
        headers={"Authorization": "Bearer wrong"},
    )
    assert response.status_code == 401
