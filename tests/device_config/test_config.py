"""The device config shadow through real HTTP, the real broker and a real MQTT client as the device."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from qris_soundbox.core.devices import config_shadow
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
from tests.devices.helpers import device_detail, eventually, first_message, provisioned_device
from tests.support import RunningPlatform


async def _config(running: RunningPlatform, device_id: str) -> dict[str, Any]:
    response = await admin(running, "GET", f"/admin/devices/{device_id}/config")
    assert response.status_code == 200, response.text
    return response.json()


async def _status(running: RunningPlatform, device_id: str) -> dict[str, Any]:
    response = await admin(running, "GET", f"/admin/devices/{device_id}/config/status")
    assert response.status_code == 200, response.text
    return response.json()


async def _patch(running: RunningPlatform, device_id: str, body: Any) -> dict[str, Any]:
    response = await admin(running, "PATCH", f"/admin/devices/{device_id}/config", body)
    assert response.status_code == 200, response.text
    return response.json()


async def _drifting(running: RunningPlatform, **params: Any) -> set[str]:
    response = await admin(running, "GET", "/admin/devices", params={"drift": "true", "limit": 200, **params})
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def test_a_new_device_runs_the_model_defaults_as_version_0_without_drift(running: RunningPlatform) -> None:
    audio_id, _ = await provisioned_device(running, "generic-audio")
    screen_id, _ = await provisioned_device(running, "generic-screen")
    model = await register_model(running, languages=["en"], volume_min=10, volume_max=30, commands=["reboot"])
    narrow_id, _ = await provisioned_device(running, model)

    audio = await _config(running, audio_id)
    assert audio["desired_version"] == 0 and audio["reported_version"] is None and audio["drift"] is False
    assert audio["desired"] == {
        "volume": 50,
        "language": "id",
        "announcement_text_template": None,
        "heartbeat_interval_s": 60,
    }
    assert (await _config(running, screen_id))["desired"]["display_brightness"] == 80
    narrow = (await _config(running, narrow_id))["desired"]
    assert narrow["language"] == "en" and narrow["volume"] == 20
    assert audio_id not in await _drifting(running)


async def test_a_patch_reaches_the_online_device_and_its_ack_closes_the_drift(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    async with online_device(running, device_id, secret) as client:
        state = await _patch(running, device_id, {"volume": 70, "language": "en"})
        assert state["desired_version"] == 1 and state["drift"] is True and state["reported_version"] is None
        assert state["desired"]["volume"] == 70 and state["desired"]["language"] == "en"
        assert device_id in await _drifting(running)

        topic, body = await next_downlink(client)
        assert topic == f"devices/{device_id}/downlink/config"
        assert body["version"] == 1 and body["config"] == state["desired"] and body["message_id"]

        await publish(
            client, device_id, "config/ack", {"message_id": body["message_id"], "version": 1, "status": "applied"}
        )

        async def applied() -> bool:
            return (await _config(running, device_id))["drift"] is False

        assert await eventually(applied)
    shadow = await _config(running, device_id)
    assert shadow["reported_version"] == 1 and shadow["reported"] == shadow["desired"]
    status = await _status(running, device_id)
    assert status["pending_ack"] is False and status["last_push"]["status"] == "acked"
    assert status["attempts"] >= 1 and status["last_push_at"] is not None
    assert device_id not in await _drifting(running)
    assert f"devices/{device_id}/uplink/config/ack" in await uplink_topics(running, device_id)
    assert await audit_actions(running, device_id) == [
        "device.create",
        "device.credential.rotate",
        "device.config.update",
        "device.config.applied",
    ]


async def test_an_offline_device_gets_only_the_latest_desired_config_on_reconnect(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    for volume in (10, 20, 30):
        state = await _patch(running, device_id, {"volume": volume})
    assert state["desired_version"] == 3
    rows = await outbox_rows(running, device_id, "config")
    assert [row["status"] for row in rows] == ["superseded", "superseded", "pending"]
    assert [row["attempts"] for row in rows] == [0, 0, 0]

    async with online_device(running, device_id, secret) as client:
        _, body = await next_downlink(client)
        assert body["version"] == 3 and body["config"]["volume"] == 30
        await publish(
            client, device_id, "config/ack", {"message_id": body["message_id"], "version": 3, "status": "applied"}
        )
        # Nothing else is on its way: the superseded versions are never delivered (at-least-once
        # delivery may repeat the latest one, which the device de-duplicates by message_id).
        while (extra := await first_message(client, 1.0)) is not None:
            assert json.loads(bytes(extra.payload))["message_id"] == body["message_id"]
    assert [row["status"] for row in await outbox_rows(running, device_id, "config")] == [
        "superseded",
        "superseded",
        "acked",
    ]
    assert (await _config(running, device_id))["reported"]["volume"] == 30


async def test_a_rejected_config_is_visible_with_its_reason(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    async with online_device(running, device_id, secret) as client:
        await _patch(running, device_id, {"language": "en"})
        _, body = await next_downlink(client)
        await publish(
            client,
            device_id,
            "config/ack",
            {
                "message_id": body["message_id"],
                "version": 1,
                "status": "rejected",
                "reason": "no English voice pack",
            },
        )

        async def rejected() -> bool:
            return (await _status(running, device_id))["last_rejection"] is not None

        assert await eventually(rejected)
    status = await _status(running, device_id)
    assert status["last_rejection"]["version"] == 1
    assert status["last_rejection"]["reason"] == "no English voice pack"
    assert status["drift"] is True and status["reported_version"] is None and status["pending_ack"] is False
    assert status["last_push"]["status"] == "failed"
    assert "device.config.rejected" in await audit_actions(running, device_id)


async def test_retry_push_re_sends_the_latest_desired_config(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    async with online_device(running, device_id, secret) as client:
        await _patch(running, device_id, {"heartbeat_interval_s": 30})
        _, first = await next_downlink(client)  # the device loses it: no ack

        response = await admin(running, "POST", f"/admin/devices/{device_id}/config/retry-push")
        assert response.status_code == 200, response.text
        status = response.json()
        assert status["desired_version"] == 1 and status["pending_ack"] is True
        assert status["last_push"]["message_id"] != first["message_id"]

        _, again = await next_downlink(client)
        while again["message_id"] == first["message_id"]:  # an at-least-once repeat of the first push
            _, again = await next_downlink(client)
        assert again["message_id"] == status["last_push"]["message_id"]
        assert again["version"] == 1 and again["config"] == first["config"]
        await publish(
            client, device_id, "config/ack", {"message_id": again["message_id"], "version": 1, "status": "applied"}
        )

        async def closed() -> bool:
            return (await _status(running, device_id))["drift"] is False

        assert await eventually(closed)
    assert [row["status"] for row in await outbox_rows(running, device_id, "config")] == ["superseded", "acked"]
    assert "device.config.retry_push" in await audit_actions(running, device_id)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"language": "en"}, 422, "unsupported_language"),  # a language the platform speaks, but not this model
        ({"language": "fr"}, 422, "unsupported_language"),  # a language nobody here speaks
        ({"volume": 95}, 422, "volume_out_of_range"),
        ({"volume": 5}, 422, "volume_out_of_range"),
        ({"announcement_text_template": "Terima kasih"}, 422, "invalid_text_template"),
        ({"announcement_text_template": "{amount_words} {merchant}"}, 422, "invalid_text_template"),
        ({"display_brightness": 50}, 422, "config_not_supported"),  # no screen
        ({"volume": "loud"}, 400, "validation_error"),
        ({"volume": 101}, 400, "validation_error"),
        ({"heartbeat_interval_s": 600}, 400, "validation_error"),
        ({"colour": "red"}, 400, "validation_error"),
        ([1, 2], 400, "validation_error"),
    ],
)
async def test_what_the_model_cannot_do_is_refused_and_nothing_is_pushed(
    running: RunningPlatform, body: Any, status: int, code: str
) -> None:
    model = await register_model(running, languages=["id"], volume_min=10, volume_max=90, commands=["reboot"])
    device_id, _ = await provisioned_device(running, model)
    response = await admin(running, "PATCH", f"/admin/devices/{device_id}/config", body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert (await _config(running, device_id))["desired_version"] == 0
    assert await outbox_rows(running, device_id, "config") == []


async def test_a_model_with_short_text_cannot_be_configured_for_a_long_language(running: RunningPlatform) -> None:
    model = await register_model(running, languages=["id", "en"], max_text_length=20, announcement_format="text")
    device_id, _ = await provisioned_device(running, model)
    response = await admin(running, "PATCH", f"/admin/devices/{device_id}/config", {"language": "en"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "announcement_too_long"


async def test_merge_patch_null_restores_a_default_and_a_no_op_keeps_the_version(running: RunningPlatform) -> None:
    device_id, _ = await provisioned_device(running, "generic-screen")
    state = await _patch(
        running,
        device_id,
        {
            "volume": 30,
            "display_brightness": 40,
            "announcement_text_template": "Dana masuk {amount_words}",
        },
    )
    assert state["desired_version"] == 1
    assert state["overrides"] == {
        "volume": 30,
        "display_brightness": 40,
        "announcement_text_template": "Dana masuk {amount_words}",
    }
    state = await _patch(running, device_id, {"volume": None})
    assert state["desired_version"] == 2 and state["desired"]["volume"] == 50
    assert state["desired"]["display_brightness"] == 40 and "volume" not in state["overrides"]
    same = await _patch(running, device_id, {"display_brightness": 40})
    assert same["desired_version"] == 2
    assert len(await outbox_rows(running, device_id, "config")) == 2
    async with running.platform.db.transaction() as conn:
        preferences = await config_shadow.announcement_preferences(conn, device_id)
    assert preferences.text_template == "Dana masuk {amount_words}" and preferences.language == "id"


async def test_device_language_is_the_configured_one_defaulting_to_indonesian(running: RunningPlatform) -> None:
    device_id, _ = await provisioned_device(running)
    db = running.platform.db
    async with db.transaction() as conn:
        assert await config_shadow.device_language(conn, device_id) == "id"
    await _patch(running, device_id, {"language": "en"})
    async with db.transaction() as conn:
        assert await config_shadow.device_language(conn, device_id) == "en"


async def test_the_device_fetches_and_acks_its_config_over_http(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    headers = device_headers(device_id, secret)
    fetched = await running.http.get("/device/config", headers=headers)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["version"] == 0 and fetched.json()["message_id"] is None

    await _patch(running, device_id, {"volume": 65})
    fetched = (await running.http.get("/device/config", headers=headers)).json()
    assert fetched["version"] == 1 and fetched["config"]["volume"] == 65 and fetched["message_id"]

    other_id, _ = await provisioned_device(running)
    forged = await running.http.post(
        "/device/config/ack", headers=headers, json={"device_id": other_id, "version": 1, "status": "applied"}
    )
    assert forged.status_code == 403
    unauthenticated = await running.http.post("/device/config/ack", json={"version": 1, "status": "applied"})
    assert unauthenticated.status_code == 401

    response = await running.http.post(
        "/device/config/ack", headers=headers, json={"version": 1, "status": "applied"}
    )  # fetched, so no message_id
    assert response.status_code == 200, response.text
    assert response.json()["drift"] is False and response.json()["reported"]["volume"] == 65
    # The ack closes the queued downlink too: the device is not sent what it already runs.
    assert [row["status"] for row in await outbox_rows(running, device_id, "config")] == ["acked"]
    actor = await running.platform.db.pool.fetchrow(
        "SELECT actor_type, actor_id, request_id FROM audit_logs WHERE action = 'device.config.applied'"
        " AND entity_id = $1",
        device_id,
    )
    assert actor["actor_type"] == "device" and actor["actor_id"] == device_id and actor["request_id"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"version": 7, "status": "applied"}, 422, "unknown_config_version"),
        ({"message_id": "msg_nope", "version": 1, "status": "applied"}, 404, "unknown_message"),
        ({"version": 1, "status": "done"}, 400, "validation_error"),
        ({"version": "one", "status": "applied"}, 400, "validation_error"),
    ],
)
async def test_bad_http_config_acks_are_refused_and_change_nothing(
    running: RunningPlatform, body: dict[str, Any], status: int, code: str
) -> None:
    device_id, secret = await provisioned_device(running)
    await _patch(running, device_id, {"volume": 60})
    response = await running.http.post("/device/config/ack", headers=device_headers(device_id, secret), json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert (await _config(running, device_id))["reported_version"] is None


async def test_malformed_config_acks_are_logged_and_ignored(
    running: RunningPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    device_id, secret = await provisioned_device(running)
    other_id, other_secret = await provisioned_device(running)
    await _patch(running, other_id, {"volume": 11})
    others_message = (await outbox_rows(running, other_id, "config"))[0]["message_id"]
    with caplog.at_level(logging.WARNING):
        async with online_device(running, device_id, secret) as client:
            await _patch(running, device_id, {"volume": 12})
            _, body = await next_downlink(client)
            for bad in (
                b"not json",
                b'{"message_id": 5, "version": 1, "status": "applied"}',  # wrong type
                b'{"message_id": "x", "version": 1, "status": "applied", "extra": 1}',  # unknown field
                {"message_id": "msg_unknown", "version": 1, "status": "applied"},  # unknown message
                {"message_id": others_message, "version": 1, "status": "applied"},  # another device's message
                {"message_id": body["message_id"], "version": 2, "status": "applied"},  # not its version
                {"message_id": body["message_id"], "version": 1, "status": "applied", "device_id": other_id},
            ):
                await publish(client, device_id, "config/ack", bad)
            await publish(
                client, device_id, "config/ack", {"message_id": body["message_id"], "version": 1, "status": "applied"}
            )

            async def good_one_applied() -> bool:
                return (await _config(running, device_id))["reported_version"] == 1

            assert await eventually(good_one_applied)
    assert (await _config(running, other_id))["reported_version"] is None
    assert (await outbox_rows(running, other_id, "config"))[0]["status"] == "pending"
    refused = [r for r in caplog.records if r.getMessage() in ("malformed uplink ignored", "uplink refused")]
    assert len(refused) == 7
    assert len([t for t in await uplink_topics(running, device_id) if t.endswith("config/ack")]) == 8


async def test_an_unacked_push_counts_as_a_pending_ack_in_the_health_summary(running: RunningPlatform) -> None:
    device_id, _ = await provisioned_device(running)
    assert "pending_acks" not in (await device_detail(running, device_id))["health_summary"]["reasons"]
    await _patch(running, device_id, {"volume": 42})
    assert "pending_acks" in (await device_detail(running, device_id))["health_summary"]["reasons"]


async def test_a_retired_device_cannot_be_configured_and_unknown_devices_are_404(running: RunningPlatform) -> None:
    device_id, _ = await provisioned_device(running)
    assert (await admin(running, "POST", f"/admin/devices/{device_id}/retire")).status_code == 200
    response = await admin(running, "PATCH", f"/admin/devices/{device_id}/config", {"volume": 40})
    assert response.status_code == 409 and response.json()["error"]["code"] == "invalid_state"
    for method, path in (("GET", "config"), ("GET", "config/status"), ("POST", "config/retry-push")):
        response = await admin(running, method, f"/admin/devices/dev_missing/{path}")
        assert response.status_code == 404, (path, response.text)


async def test_the_config_and_command_routes_are_documented_in_openapi(running: RunningPlatform) -> None:
    response = await running.http.get("/schema/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    for path in (
        "/admin/devices/{device_id}/config",
        "/admin/devices/{device_id}/config/status",
        "/admin/devices/{device_id}/config/retry-push",
        "/admin/devices/{device_id}/commands",
        "/admin/devices/{device_id}/commands/{command_id}",
        "/device/config",
        "/device/config/ack",
        "/device/commands/ack",
    ):
        assert path in paths, path
    patch_schema = schema["components"]["schemas"]["ConfigPatch"]
    assert set(patch_schema["properties"]) == set(config_shadow.CONFIG_KEYS)
