"""Credential rotation: the secret is shown once and stored nowhere, hashed with cheap argon2id."""

from __future__ import annotations

import hashlib
import logging

import pytest
from argon2 import extract_parameters

from qris_soundbox.core.context import PlatformContext
from qris_soundbox.core.devices.credentials import new_secret
from tests.devices.helpers import device_detail, register_device, rotate
from tests.support import RunningPlatform, settings_for_tests


async def test_rotation_answers_the_spec_shape_and_a_strong_secret(running: RunningPlatform) -> None:
    device = await register_device(running)
    issued = await rotate(running, device["id"])
    assert issued["device_id"] == device["id"]
    assert issued["mqtt_username"] == device["id"] and issued["mqtt_client_id"] == device["id"]
    assert len(issued["mqtt_password"]) >= 43  # 32 random bytes, urlsafe base64
    assert issued["fingerprint"] == hashlib.sha256(issued["mqtt_password"].encode()).hexdigest()[:16]
    broker = issued["broker"]
    assert (broker["scheme"], broker["host"], broker["port"]) == ("mqtt", running.mqtt_host, running.mqtt_port)
    again = await rotate(running, device["id"])
    assert again["mqtt_password"] != issued["mqtt_password"] and again["fingerprint"] != issued["fingerprint"]


async def test_detail_shows_fingerprint_and_rotation_time_only(running: RunningPlatform) -> None:
    device = await register_device(running)
    issued = await rotate(running, device["id"])
    detail = await device_detail(running, device["id"])
    assert detail["status"] == "active"
    assert detail["credential"]["fingerprint"] == issued["fingerprint"]
    assert detail["credential"]["rotated_at"] is not None
    text = str(detail)
    assert issued["mqtt_password"] not in text and "argon2" not in text


async def test_only_an_argon2id_hash_is_stored_with_fleet_friendly_parameters(running: RunningPlatform) -> None:
    device = await register_device(running)
    issued = await rotate(running, device["id"])
    row = await running.platform.db.pool.fetchrow(
        "SELECT credential_hash, credential_fingerprint FROM devices WHERE id = $1", device["id"]
    )
    assert row["credential_hash"].startswith("$argon2id$")
    params = extract_parameters(row["credential_hash"])
    assert (params.time_cost, params.memory_cost, params.parallelism) == (1, 1024, 1)
    assert issued["mqtt_password"] not in row["credential_hash"]
    dump = await running.platform.db.pool.fetchval("SELECT string_agg(payload::text, ' ') FROM audit_logs")
    assert issued["mqtt_password"] not in dump
    assert issued["fingerprint"] in dump


async def test_the_secret_is_never_logged(running: RunningPlatform, caplog: pytest.LogCaptureFixture) -> None:
    from qris_soundbox.core.logging import JsonFormatter

    formatter = JsonFormatter()
    with caplog.at_level(logging.DEBUG):
        device = await register_device(running)
        issued = await rotate(running, device["id"])
        async with running.mqtt(device["id"], issued["mqtt_password"]) as client:
            await client.publish(f"devices/{device['id']}/uplink/heartbeat", b"{}", qos=1)
        await running.http.post(
            "/device/heartbeat",
            json={"battery_level": 50},
            headers={"X-Device-Id": device["id"], "X-Device-Secret": issued["mqtt_password"]},
        )
        # a wrong secret is not logged either
        await running.http.post(
            "/device/heartbeat", json={}, headers={"X-Device-Id": device["id"], "X-Device-Secret": "guess-123"}
        )
    lines = [formatter.format(record) for record in caplog.records]
    assert lines, "expected some log lines while doing all that"
    assert not [line for line in lines if issued["mqtt_password"] in line or "guess-123" in line]


def test_devices_are_told_the_public_address_else_the_listener() -> None:
    """The rotation names MQTT_PUBLIC_HOST/PORT when set, else where this process's broker listens."""

    def told(listener: tuple[str, int] | None, **public: object) -> tuple[str, int]:
        settings = settings_for_tests("postgresql://unused/db", **public)
        platform = PlatformContext(settings, db=None)  # type: ignore[arg-type]  # no query is run
        platform.broker_listener = listener
        address = platform.device_broker_address()
        return address.host, address.port

    assert told(("10.0.0.5", 1884)) == ("10.0.0.5", 1884)
    assert told(("0.0.0.0", 1884)) == ("127.0.0.1", 1884)  # a wildcard bind is no address to connect to
    assert told(None) == ("127.0.0.1", 1883)  # --only api: no broker in this process
    public = {"mqtt_public_host": "mqtt.example.id", "mqtt_public_port": 8883}
    assert told(("0.0.0.0", 1884), **public) == ("mqtt.example.id", 8883)


def test_a_secret_never_starts_with_a_dash_so_it_can_follow_a_command_line_option() -> None:
    # token_urlsafe starts one secret in 64 with "-": 2,000 of them would show it.
    secrets = [new_secret() for _ in range(2_000)]
    assert not [s for s in secrets if s.startswith("-")]
    assert len(set(secrets)) == len(secrets)
