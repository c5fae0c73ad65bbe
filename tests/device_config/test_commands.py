"""Remote commands through real HTTP, the real broker and a real MQTT client as the device."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pytest

from tests.device_config.helpers import (
    admin,
    audit_actions,
    device_headers,
    next_downlink,
    online_device,
    outbox_rows,
    publish,
    register_model,
    uplink_topics,
)
from tests.devices.helpers import device_detail, eventually, provisioned_device
from tests.support import RunningPlatform

CHECKSUM = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
COMMANDS = [
    ("reboot", None),
    ("play_test_sound", {}),
    ("set_volume", {"volume": 35}),
    ("ota_update", {"url": "https://firmware.example.com/sb-2.1.0.bin", "checksum": CHECKSUM, "version": "2.1.0"}),
    ("sync_time", {}),
]


async def _create(running: RunningPlatform, device_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await admin(running, "POST", f"/admin/devices/{device_id}/commands", body)
    assert response.status_code == 201, response.text
    return response.json()


async def _command(running: RunningPlatform, device_id: str, command_id: str) -> dict[str, Any]:
    response = await admin(running, "GET", f"/admin/devices/{device_id}/commands/{command_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def _reaches(running: RunningPlatform, device_id: str, command_id: str, status: str) -> bool:
    async def check() -> bool:
        return (await _command(running, device_id, command_id))["status"] == status

    return await eventually(check)


@pytest.mark.parametrize(("command_type", "params"), COMMANDS)
async def test_each_command_round_trips_with_its_mqtt_ack(
    running: RunningPlatform, command_type: str, params: dict[str, Any] | None
) -> None:
    device_id, secret = await provisioned_device(running)
    async with online_device(running, device_id, secret) as client:
        body: dict[str, Any] = {"type": command_type} | ({"params": params} if params is not None else {})
        command = await _create(running, device_id, body)
        assert command["id"].startswith("cmd_") and command["type"] == command_type
        assert command["status"] in ("queued", "sent") and command["expires_at"]

        topic, downlink = await next_downlink(client)
        assert topic == f"devices/{device_id}/downlink/command"
        assert downlink["command_id"] == command["id"] and downlink["type"] == command_type
        assert downlink["message_id"] == command["message_id"]
        if command_type == "sync_time":
            assert datetime.fromisoformat(downlink["params"]["server_time"]).tzinfo is not None
        else:
            assert downlink["params"] == (params or {})
        assert await _reaches(running, device_id, command["id"], "sent")

        await publish(
            client,
            device_id,
            "command/ack",
            {
                "message_id": downlink["message_id"],
                "command_id": command["id"],
                "status": "succeeded",
                "detail": "ok",
            },
        )
        assert await _reaches(running, device_id, command["id"], "acked")
    done = await _command(running, device_id, command["id"])
    assert done["detail"] == "ok" and done["completed_at"] is not None and done["attempts"] >= 1
    assert f"devices/{device_id}/uplink/command/ack" in await uplink_topics(running, device_id)
    assert await audit_actions(running, device_id) == [
        "device.create",
        "device.credential.rotate",
        "device.command.create",
        "device.command.acked",
    ]


async def test_a_command_acked_over_http_can_fail_with_its_detail(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    command = await _create(
        running,
        device_id,
        {"type": "ota_update", "params": {"url": "https://firmware.example.com/x.bin", "checksum": CHECKSUM.upper()}},
    )
    assert command["params"]["checksum"] == CHECKSUM  # normalised to lower case
    headers = device_headers(device_id, secret)
    ack = {
        "command_id": command["id"],
        "message_id": command["message_id"],
        "status": "failed",
        "detail": "checksum mismatch after download",
    }
    response = await running.http.post("/device/commands/ack", headers=headers, json=ack)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "failed"
    assert response.json()["detail"] == "checksum mismatch after download"
    again = await running.http.post("/device/commands/ack", headers=headers, json=ack)  # a retried ack
    assert again.status_code == 200 and again.json()["status"] == "failed"
    contrary = await running.http.post("/device/commands/ack", headers=headers, json=ack | {"status": "succeeded"})
    assert contrary.status_code == 409 and contrary.json()["error"]["code"] == "command_closed"
    assert "device.command.failed" in await audit_actions(running, device_id)


async def test_a_command_the_model_does_not_support_is_refused(running: RunningPlatform) -> None:
    model = await register_model(running, commands=["reboot"])
    device_id, _ = await provisioned_device(running, model)
    response = await admin(
        running,
        "POST",
        f"/admin/devices/{device_id}/commands",
        {"type": "ota_update", "params": {"url": "https://firmware.example.com/x.bin", "checksum": CHECKSUM}},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "command_not_supported"
    assert await outbox_rows(running, device_id, "command") == []
    assert (await _create(running, device_id, {"type": "reboot"}))["status"] in ("queued", "sent")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"type": "set_volume"}, 400, "validation_error"),
        ({"type": "set_volume", "params": {"volume": "loud"}}, 400, "validation_error"),
        ({"type": "set_volume", "params": {"volume": 95}}, 422, "volume_out_of_range"),  # model range 10..90
        (
            {"type": "ota_update", "params": {"url": "http://firmware.example.com/x.bin", "checksum": CHECKSUM}},
            400,
            "validation_error",
        ),
        ({"type": "ota_update", "params": {"url": "https://", "checksum": CHECKSUM}}, 400, "validation_error"),
        (
            {"type": "ota_update", "params": {"url": "https://f.example.com/x.bin", "checksum": "abc"}},
            400,
            "validation_error",
        ),
        ({"type": "reboot", "params": {"delay": 5}}, 400, "validation_error"),
        ({"type": "sync_time", "params": {"server_time": "2020-01-01T00:00:00Z"}}, 400, "validation_error"),
        ({"type": "self_destruct"}, 400, "validation_error"),
        ({"type": "reboot", "expires_in_s": 0}, 400, "validation_error"),
        ({"type": "reboot", "expires_in_s": 10**9}, 400, "validation_error"),
        ({"params": {}}, 400, "validation_error"),
    ],
)
async def test_bad_command_params_are_refused_and_nothing_is_queued(
    running: RunningPlatform, body: dict[str, Any], status: int, code: str
) -> None:
    model = await register_model(
        running, volume_min=10, volume_max=90, commands=["reboot", "set_volume", "ota_update", "sync_time"]
    )
    device_id, _ = await provisioned_device(running, model)
    response = await admin(running, "POST", f"/admin/devices/{device_id}/commands", body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert await outbox_rows(running, device_id, "command") == []


async def test_a_command_for_an_offline_device_expires(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    command = await _create(running, device_id, {"type": "reboot", "expires_in_s": 60})
    assert command["status"] == "queued"
    assert "pending_acks" in (await device_detail(running, device_id))["health_summary"]["reasons"]
    # Time passes: the row's expiry is moved into the past, as an hour offline would.
    await running.platform.db.pool.execute(
        "UPDATE device_outbox SET expires_at = now() - interval '1 second' WHERE message_id = $1",
        command["message_id"],
    )
    assert (await _command(running, device_id, command["id"]))["status"] == "expired"

    async def swept() -> bool:  # the broker's outbox publisher expires the row on its tick
        return (await outbox_rows(running, device_id, "command"))[0]["status"] == "expired"

    assert await eventually(swept)
    assert "pending_acks" not in (await device_detail(running, device_id))["health_summary"]["reasons"]
    late = await running.http.post(
        "/device/commands/ack",
        headers=device_headers(device_id, secret),
        json={"command_id": command["id"], "status": "succeeded"},
    )
    assert late.status_code == 409 and late.json()["error"]["code"] == "command_closed"
    async with online_device(running, device_id, secret):
        pass  # reconnecting delivers nothing expired
    rows = await outbox_rows(running, device_id, "command")
    assert rows[0]["attempts"] == 0 and (await _command(running, device_id, command["id"]))["status"] == "expired"


async def test_commands_page_newest_first(running: RunningPlatform) -> None:
    device_id, _ = await provisioned_device(running)
    created = [(await _create(running, device_id, {"type": "play_test_sound"}))["id"] for _ in range(3)]
    first = await admin(running, "GET", f"/admin/devices/{device_id}/commands", params={"limit": 2})
    assert first.status_code == 200, first.text
    assert [c["id"] for c in first.json()["items"]] == created[::-1][:2]
    second = await admin(
        running,
        "GET",
        f"/admin/devices/{device_id}/commands",
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
    )
    assert [c["id"] for c in second.json()["items"]] == created[:1] and second.json()["next_cursor"] is None
    other_id, _ = await provisioned_device(running)
    response = await admin(running, "GET", f"/admin/devices/{other_id}/commands/{created[0]}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "command_not_found"
    assert (await admin(running, "GET", "/admin/devices/dev_missing/commands")).status_code == 404


async def test_malformed_command_acks_are_logged_and_ignored(
    running: RunningPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    device_id, secret = await provisioned_device(running)
    other_id, _ = await provisioned_device(running)
    others = await _create(running, other_id, {"type": "reboot"})
    with caplog.at_level(logging.WARNING):
        async with online_device(running, device_id, secret) as client:
            command = await _create(running, device_id, {"type": "reboot"})
            _, downlink = await next_downlink(client)
            for bad in (
                b"\xff\xfe not json",
                b'{"command_id": 1, "status": "succeeded"}',  # wrong type
                {"command_id": command["id"], "status": "maybe"},  # not a status
                {"command_id": "cmd_unknown", "status": "succeeded"},  # unknown command
                {"command_id": others["id"], "message_id": others["message_id"], "status": "succeeded"},  # not its own
                {"command_id": command["id"], "message_id": others["message_id"], "status": "succeeded"},  # wrong msg
            ):
                await publish(client, device_id, "command/ack", bad)
            await publish(
                client,
                device_id,
                "command/ack",
                {"command_id": command["id"], "message_id": downlink["message_id"], "status": "succeeded"},
            )
            assert await _reaches(running, device_id, command["id"], "acked")
    assert (await _command(running, other_id, others["id"]))["status"] == "queued"
    refused = [r for r in caplog.records if r.getMessage() in ("malformed uplink ignored", "uplink refused")]
    assert len(refused) == 6


async def test_command_routes_need_the_command_permission(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    response = await running.http.post(
        f"/admin/devices/{device_id}/commands", json={"type": "reboot"}, headers=device_headers(device_id, secret)
    )
    assert response.status_code == 401
    retired_id, _ = await provisioned_device(running)
    assert (await admin(running, "POST", f"/admin/devices/{retired_id}/retire")).status_code == 200
    response = await admin(running, "POST", f"/admin/devices/{retired_id}/commands", {"type": "reboot"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "invalid_state"
