"""The MQTT contract of a device, as an AsyncAPI document (``GET /schema/asyncapi.json``).

Topics and payloads come from the code: uplink payloads are the Structs the
uplink handlers decode with (``plugins/uplinks.py``); downlink payloads are
described by the Structs below, which ``tests/ops/test_asyncapi.py`` holds
against the downlinks the platform really sends (each decoded with unknown
fields forbidden), so the document cannot drift from the wire.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from qris_soundbox.core.announcement import Announcement
from qris_soundbox.core.devices.commands import CommandAck
from qris_soundbox.core.devices.config_shadow import ConfigAck
from qris_soundbox.core.devices.schemas import Heartbeat
from qris_soundbox.core.payments.schemas import DynamicQrRequest, PaymentAck
from qris_soundbox.core.schemas import Struct


class _Downlink(Struct, kw_only=True, forbid_unknown_fields=True):
    message_id: str  # the device de-duplicates by it, and acks it


class PaymentDownlink(_Downlink, kw_only=True):
    """``devices/<id>/downlink/payment``: play it, then ack ``message_id`` on ``uplink/payment/ack``.
    ``type: "refund"`` (text models only): a refund of that payment, "Pengembalian dana QRIS, …"."""

    type: Literal["payment", "refund"]
    transaction_id: str
    refund_id: str | None = None  # a refund's id
    amount: int  # rupiah (a refund: the amount refunded)
    currency: str
    paid_at: datetime  # a refund: when it succeeded
    announcement: Announcement
    # The signature (docs/announcement-signing.md): verify it, with these, before playing.
    device_id: str  # the device it was signed for
    counter: int  # strictly increases per device: a lower or equal one is a replay
    kid: str  # which published key (GET /device/keys) signed it
    sig: str  # Ed25519 over the canonical bytes, standard Base64


class DynamicQrError(Struct, kw_only=True, forbid_unknown_fields=True):
    code: str
    message: str


class DynamicQrResponse(_Downlink, kw_only=True):
    """``devices/<id>/downlink/dynamic-qr/response``: the QR asked for, or ``error``; expects no ack."""

    request_id: str | None
    transaction_id: str | None = None
    qr_payload: str | None = None
    expires_at: datetime | None = None
    error: DynamicQrError | None = None


class ConfigDownlink(_Downlink, kw_only=True):
    """``devices/<id>/downlink/config``: the desired configuration; ack on ``uplink/config/ack``."""

    version: int
    config: dict[str, Any]


class CommandDownlink(_Downlink, kw_only=True):
    """``devices/<id>/downlink/command``: run it, then ack on ``uplink/command/ack``."""

    command_id: str
    type: str
    params: dict[str, Any]
    expires_at: datetime


# (topic suffix, direction, payload, what it is). Uplinks: the device publishes; downlinks: it receives (QoS 1).
CHANNELS: list[tuple[str, Literal["uplink", "downlink"], type[msgspec.Struct], str]] = [
    ("heartbeat", "uplink", Heartbeat, "Battery, signal, firmware: sent every minute or so"),
    ("payment/ack", "uplink", PaymentAck, "The payment announcement was played"),
    ("dynamic-qr/request", "uplink", DynamicQrRequest, "Ask for a dynamic QR of an amount"),
    ("config/ack", "uplink", ConfigAck, "A configuration was applied or rejected"),
    ("command/ack", "uplink", CommandAck, "A command succeeded or failed"),
    ("payment", "downlink", PaymentDownlink, "A payment to announce"),
    ("dynamic-qr/response", "downlink", DynamicQrResponse, "The answer to a dynamic QR request"),
    ("config", "downlink", ConfigDownlink, "The configuration to apply"),
    ("command", "downlink", CommandDownlink, "A command to run"),
]


def asyncapi_document(version: str) -> dict[str, Any]:
    """AsyncAPI 2.6 of the device topics; payload schemas are ``msgspec.json.schema`` of the Structs."""
    types = [payload for _, _, payload, _ in CHANNELS]
    _, schemas = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for suffix, direction, payload, summary in CHANNELS:
        name = payload.__name__
        messages[name] = {
            "name": name,
            "title": name,
            "summary": summary,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }
        # AsyncAPI 2 speaks from the client's side: "publish" is what the device sends, "subscribe" what it gets.
        operation = "publish" if direction == "uplink" else "subscribe"
        channels[f"devices/{{device_id}}/{direction}/{suffix}"] = {
            "parameters": {"device_id": {"$ref": "#/components/parameters/device_id"}},
            operation: {
                "operationId": f"{direction}_{suffix.replace('/', '_').replace('-', '_')}",
                "summary": summary,
                "bindings": {"mqtt": {"qos": 1, "retain": False}},
                "message": {"$ref": f"#/components/messages/{name}"},
            },
        }
    return {
        "asyncapi": "2.6.0",
        "info": {
            "title": "QRIS Soundbox Platform: device MQTT contract",
            "version": version,
            "description": (
                "A device connects with client id = username = its device id and password = its secret, publishes"
                " only under devices/<id>/uplink/ and subscribes only to devices/<id>/downlink/# (the broker's ACL"
                " refuses the rest). Downlinks are QoS 1 and delivered at least once: de-duplicate by message_id."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "broker": {
                "url": "{host}:{port}",
                "protocol": "mqtt",
                "protocolVersion": "3.1.1",
                "description": "The address a credential rotation hands the device (MQTT_PUBLIC_HOST/PORT)",
                "variables": {"host": {"default": "localhost"}, "port": {"default": "1883"}},
                "security": [{"device": []}],
            }
        },
        "channels": channels,
        "components": {
            "messages": messages,
            "schemas": schemas,
            "parameters": {"device_id": {"description": "The device's id (dev_...)", "schema": {"type": "string"}}},
            "securitySchemes": {
                "device": {"type": "userPassword", "description": "username = client id = device id; password = secret"}
            },
        },
    }
