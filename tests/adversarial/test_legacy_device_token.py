"""The shared legacy ``DEVICE_TOKEN`` lets its holder act as any device: off unless asked for,
every use logged (device id, never the token) and counted, never accepted by the broker."""

from __future__ import annotations

import logging

import pytest
from aiomqtt.exceptions import MqttConnectError

from qris_soundbox.control_plane.app import create_app
from qris_soundbox.core.config import ConfigError, load_settings
from qris_soundbox.core.demo import demo_overrides
from qris_soundbox.core.logging import JsonFormatter
from tests.devices.helpers import admin_post, device_detail, provisioned_device, register_device
from tests.foundation.test_route_permissions import all_handlers
from tests.onboarding import onboarded_terminal
from tests.support import DEVICE_TOKEN, PlatformFactory, RunningPlatform

LEGACY = {"Authorization": f"Bearer {DEVICE_TOKEN}"}
LOGGER = "qris_soundbox.core.devices.legacy_token"


def device_routes(running: RunningPlatform) -> list[tuple[str, str]]:
    """(method, path) of every route a device authenticates to: where the shared token used to work."""
    routes = sorted(
        {
            (method, path)
            for path, handler in all_handlers(create_app(running.platform))
            if handler.opt.get("device") is True
            for method in handler.http_methods
            if method != "OPTIONS"
        }
    )
    assert len(routes) >= 6, routes  # heartbeat, config, config ack, command ack, two dynamic QR routes
    return routes


async def call_as(running: RunningPlatform, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict]:
    body = {"amount": 10_000, "request_id": "legacy-probe"} if "dynamic-qr" in path else {}
    response = await running.http.request(method, path, headers=headers, json=None if method == "GET" else body)
    return response.status_code, response.json()


async def legacy_usage(running: RunningPlatform) -> dict:
    summary = await running.http.get("/admin/observability/summary", headers=running.admin_headers)
    assert summary.status_code == 200, summary.text
    return summary.json()["legacy_device_token"]


async def bound_device(running: RunningPlatform) -> str:
    device_id, _ = await provisioned_device(running, model="generic-screen")
    terminal = await onboarded_terminal(running)
    bound = await admin_post(running, f"/admin/devices/{device_id}/bind", {"terminal_id": terminal["terminal_id"]})
    assert bound.status_code == 200, bound.text
    return device_id


@pytest.fixture(scope="module")
async def legacy_off(platform_factory: PlatformFactory) -> RunningPlatform:
    """DEVICE_TOKEN configured, DEVICE_AUTH_ALLOW_LEGACY_TOKEN left at its default."""
    return await platform_factory.start(device_token=DEVICE_TOKEN)


@pytest.fixture(scope="module")
async def legacy_on(platform_factory: PlatformFactory) -> RunningPlatform:
    return await platform_factory.start(device_token=DEVICE_TOKEN, device_auth_allow_legacy_token=True)


async def test_by_default_the_shared_token_is_refused_on_every_device_route(
    legacy_off: RunningPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    device_id = await bound_device(legacy_off)
    routes = device_routes(legacy_off)
    before = await legacy_usage(legacy_off)
    assert before["enabled"] is False
    for method, path in routes:
        status, body = await call_as(legacy_off, method, path, LEGACY | {"X-Device-Id": device_id})
        assert status == 401, (method, path, body)
        assert body["error"]["code"] == "unauthorized" and "disabled" in body["error"]["message"]
        assert body["error"]["request_id"]
    after = await legacy_usage(legacy_off)
    assert after["refused"] - before["refused"] == len(routes) and after["accepted"] == 0
    refusals = [r for r in caplog.records if r.name == LOGGER and r.msg == "shared device token refused"]
    assert len(refusals) == len(routes) and all(r.device_id == device_id for r in refusals)
    # the device id in the body, as old firmware sends it, is refused too
    heartbeat = await legacy_off.http.post("/device/heartbeat", json={"device_id": device_id}, headers=LEGACY)
    assert heartbeat.status_code == 401
    assert (await device_detail(legacy_off, device_id))["last_heartbeat_at"] is None


async def test_a_wrong_token_is_an_ordinary_refusal_and_not_counted(legacy_off: RunningPlatform) -> None:
    device_id = await bound_device(legacy_off)
    before = await legacy_usage(legacy_off)
    wrong = await legacy_off.http.post(
        "/device/heartbeat", json={}, headers={"Authorization": "Bearer not-the-token", "X-Device-Id": device_id}
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
    assert await legacy_usage(legacy_off) == before


async def test_switched_on_the_shared_token_works_on_every_device_route_logged_and_counted(
    legacy_on: RunningPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    device_id = await bound_device(legacy_on)
    routes = device_routes(legacy_on)
    before = await legacy_usage(legacy_on)
    assert before["enabled"] is True
    for method, path in routes:
        status, body = await call_as(legacy_on, method, path, LEGACY | {"X-Device-Id": device_id})
        assert status != 401, (method, path, body)  # past authentication (a body may still be invalid)
    heartbeat = await legacy_on.http.post(
        "/device/heartbeat", json={"battery_level": 42}, headers=LEGACY | {"X-Device-Id": device_id}
    )
    assert heartbeat.status_code == 200, heartbeat.text
    assert (await device_detail(legacy_on, device_id))["battery_level"] == 42

    after = await legacy_usage(legacy_on)
    assert after["accepted"] - before["accepted"] == len(routes) + 1
    assert after["last_accepted_device_id"] == device_id and after["last_accepted_at"] is not None
    uses = [r for r in caplog.records if r.name == LOGGER and r.msg == "shared device token accepted"]
    assert len(uses) == len(routes) + 1
    for record in uses:
        line = JsonFormatter().format(record)
        assert record.device_id == device_id and f'"device_id":"{device_id}"' in line
        assert '"auth":"legacy_token"' in line and DEVICE_TOKEN not in line


async def test_switched_on_the_device_is_named_by_header_or_body_and_must_be_usable(
    legacy_on: RunningPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    device = await register_device(legacy_on)  # no credential needed on the legacy path, as before
    by_body = await legacy_on.http.post(
        "/device/heartbeat", json={"device_id": device["id"], "battery_level": 62}, headers=LEGACY
    )
    assert by_body.status_code == 200, by_body.text
    assert (await device_detail(legacy_on, device["id"]))["battery_level"] == 62
    before = await legacy_usage(legacy_on)
    nameless = await legacy_on.http.post("/device/heartbeat", json={"battery_level": 1}, headers=LEGACY)
    assert nameless.status_code == 400 and nameless.json()["error"]["code"] == "validation_error"
    unknown = await legacy_on.http.post("/device/heartbeat", json={"device_id": "dev_nobody"}, headers=LEGACY)
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "unauthorized"
    await admin_post(legacy_on, f"/admin/devices/{device['id']}/retire")
    retired = await legacy_on.http.post("/device/heartbeat", json={}, headers=LEGACY | {"X-Device-Id": device["id"]})
    assert retired.status_code == 401
    after = await legacy_usage(legacy_on)
    assert after["refused"] - before["refused"] == 3 and after["accepted"] == before["accepted"]
    refused_ids = [r.device_id for r in caplog.records if r.msg == "shared device token refused"]
    assert refused_ids == [None, "dev_nobody", device["id"]]


async def test_a_deeply_nested_body_with_the_token_is_not_a_500(legacy_on: RunningPlatform) -> None:
    nested = b'{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await legacy_on.http.post(
        "/device/heartbeat", content=nested, headers=LEGACY | {"Content-Type": "application/json"}
    )
    assert response.status_code < 500, response.text


@pytest.mark.parametrize("allowed", [False, True])
async def test_the_broker_never_accepts_the_shared_token(
    legacy_off: RunningPlatform, legacy_on: RunningPlatform, allowed: bool
) -> None:
    running = legacy_on if allowed else legacy_off
    device_id, secret = await provisioned_device(running)
    with pytest.raises(MqttConnectError, match="Not authorized"):
        async with running.mqtt(device_id, DEVICE_TOKEN):
            pass
    async with running.mqtt(device_id, secret):  # its own secret still connects
        pass


def test_allowing_the_shared_token_without_one_stops_startup_naming_the_variable() -> None:
    assert load_settings({}).device_auth_allow_legacy_token is False
    with pytest.raises(ConfigError, match="DEVICE_AUTH_ALLOW_LEGACY_TOKEN"):
        load_settings({"DEVICE_AUTH_ALLOW_LEGACY_TOKEN": "true"})
    allowed = load_settings({"DEVICE_AUTH_ALLOW_LEGACY_TOKEN": "true", "DEVICE_TOKEN": DEVICE_TOKEN})
    assert allowed.device_auth_allow_legacy_token


def test_demo_mode_switches_the_shared_token_on_unless_the_operator_set_it() -> None:
    assert demo_overrides({}, {})["device_auth_allow_legacy_token"] is True
    assert demo_overrides({}, {"DEVICE_AUTH_ALLOW_LEGACY_TOKEN": " "})["device_auth_allow_legacy_token"] is True
    assert "device_auth_allow_legacy_token" not in demo_overrides({}, {"DEVICE_AUTH_ALLOW_LEGACY_TOKEN": "false"})
    settings = load_settings({}, **demo_overrides({}, {}))
    assert settings.device_auth_allow_legacy_token and settings.device_token
