"""Device authentication for ``/device/*`` routes (``opt={"device": True}``).

- ``X-Device-Id`` + ``X-Device-Secret``: the device's own secret, the same one
  it uses for MQTT, checked by the same verifier as the broker;
- legacy: ``Authorization: Bearer $DEVICE_TOKEN`` (the earlier implementation's
  shared token), the device id then taken from ``X-Device-Id`` or the JSON
  body's ``device_id``; refused when ``DEVICE_AUTH_ALLOW_LEGACY_TOKEN=false``.

The authenticated device is stored as ``connection.state["device"]``.
"""

from __future__ import annotations

import hmac

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection

from qris_soundbox.core.context import PlatformContext
from qris_soundbox.core.devices.credentials import VerifiedDevice, verifier_for
from qris_soundbox.core.devices.errors import DeviceAuthFailed
from qris_soundbox.core.errors import ValidationFailed
from qris_soundbox.core.logging import device_id_var


class _DeviceIdOnly(msgspec.Struct):
    device_id: str | None = None


async def _device_id_from_body(connection: ASGIConnection) -> str | None:
    if not isinstance(connection, Request):
        return None
    try:
        return msgspec.json.decode(await connection.body(), type=_DeviceIdOnly).device_id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None  # the route's own body parsing reports what is wrong with it


def _bearer(connection: ASGIConnection) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def authenticate_device(connection: ASGIConnection) -> VerifiedDevice:
    platform: PlatformContext = connection.app.state["platform"]
    device_id = connection.headers.get("x-device-id") or None
    secret = connection.headers.get("x-device-secret")
    verifier = verifier_for(platform)
    if secret is not None:
        if not device_id:
            raise DeviceAuthFailed("X-Device-Id is required with X-Device-Secret")
        device = await verifier.verify(device_id, secret)
        if device is None:
            raise DeviceAuthFailed("device credentials are invalid, or the device is not active")
    else:
        token = _bearer(connection)
        settings = platform.settings
        if token is None:
            raise DeviceAuthFailed("device credentials are required: X-Device-Id and X-Device-Secret")
        if not settings.device_auth_allow_legacy_token or not settings.device_token:
            raise DeviceAuthFailed("the shared device token is disabled; use X-Device-Id and X-Device-Secret")
        if not hmac.compare_digest(token.encode(), settings.device_token.encode()):
            raise DeviceAuthFailed("the device token is invalid")
        device_id = device_id or await _device_id_from_body(connection)
        if not device_id:
            raise ValidationFailed(
                "with the shared device token, name the device in X-Device-Id or the body's device_id",
                details={"field": "device_id"},
            )
        device = await verifier.verify_legacy(device_id)
        if device is None:
            raise DeviceAuthFailed("unknown device, or the device is not active")
    connection.state["device"] = device
    # Tag this request's log lines with the device (the request middleware resets its own vars only).
    device_id_var.set(device.device_id)
    return device


def device_of(connection: ASGIConnection) -> VerifiedDevice:
    return connection.state["device"]
