"""``GET /schema/asyncapi.json``: the device MQTT contract, its topics and payload schemas taken from the
code, and its downlink schemas held against what the platform really sends (real broker, real device)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from qris_soundbox.core import outbox
from qris_soundbox.core.mqtt_contract import (
    CHANNELS,
    CommandDownlink,
    ConfigDownlink,
    DynamicQrResponse,
    PaymentDownlink,
)
from qris_soundbox.plugins.uplinks import HANDLERS
from tests.device_config.helpers import admin, next_downlink, online_device, publish
from tests.devices.helpers import provisioned_device
from tests.payments.helpers import callback_body, post_callback
from tests.payments.test_announcements import bound_soundbox
from tests.support import RunningPlatform


@pytest.fixture(scope="module")
async def document(running: RunningPlatform) -> dict[str, Any]:
    answer = await running.http.get("/schema/asyncapi.json")
    assert answer.status_code == 200
    return answer.json()


def test_every_topic_the_platform_handles_or_sends_is_documented(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "2.6.0"
    channels = document["channels"]
    uplinks = {name.removeprefix("devices/{device_id}/uplink/") for name in channels if "/uplink/" in name}
    downlinks = {name.removeprefix("devices/{device_id}/downlink/") for name in channels if "/downlink/" in name}
    assert uplinks == set(HANDLERS)  # a new uplink handler without its contract fails here
    assert downlinks == set(outbox.TOPIC_SUFFIX.values())
    for name, channel in channels.items():
        operation = channel["publish" if "/uplink/" in name else "subscribe"]
        message = operation["message"]["$ref"].rsplit("/", 1)[-1]
        payload = document["components"]["messages"][message]["payload"]["$ref"].rsplit("/", 1)[-1]
        assert payload in document["components"]["schemas"], name


def test_payload_schemas_are_the_structs_schemas(document: dict[str, Any]) -> None:
    _, expected = msgspec.json.schema_components(
        [payload for _, _, payload, _ in CHANNELS], ref_template="#/components/schemas/{name}"
    )
    assert document["components"]["schemas"] == msgspec.json.decode(msgspec.json.encode(expected))


async def test_the_downlinks_the_platform_sends_match_the_documented_structs(running: RunningPlatform) -> None:
    ids, device_id, secret = await bound_soundbox(running, "generic-screen")
    async with online_device(running, device_id, secret) as device:
        await post_callback(running, callback_body(amount=7_000, terminal_id=ids["terminal_id"]))
        topic, payment = await next_downlink(device)
        assert topic.endswith("/downlink/payment")
        msgspec.convert(payment, PaymentDownlink)

        await publish(device, device_id, "dynamic-qr/request", {"request_id": "req-doc", "amount": 9_000})
        topic, reply = await next_downlink(device)
        assert topic.endswith("/downlink/dynamic-qr/response") and reply["qr_payload"]
        msgspec.convert(reply, DynamicQrResponse)

        await publish(device, device_id, "dynamic-qr/request", {"request_id": "req-bad", "amount": -1})
        _, refused = await next_downlink(device)
        assert msgspec.convert(refused, DynamicQrResponse).error is not None

    device_id, secret = await provisioned_device(running)
    async with online_device(running, device_id, secret) as device:
        assert (await admin(running, "PATCH", f"/admin/devices/{device_id}/config", {"volume": 40})).status_code == 200
        topic, config = await next_downlink(device)
        assert topic.endswith("/downlink/config")
        msgspec.convert(config, ConfigDownlink)

        created = await admin(running, "POST", f"/admin/devices/{device_id}/commands", {"type": "reboot"})
        assert created.status_code == 201, created.text
        topic, command = await next_downlink(device)
        assert topic.endswith("/downlink/command")
        msgspec.convert(command, CommandDownlink)


def test_an_undocumented_field_would_be_caught() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"message_id": "m", "version": 1, "config": {}, "surprise": 1}, ConfigDownlink)
