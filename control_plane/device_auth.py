"""Device authentication for ``/device/*`` routes (``opt={"device": True}``).

- ``X-Device-Id`` + ``X-Device-Secret``: the device's own secret, the same one
  it uses for MQTT, checked by the same verifier as the broker;
- legacy: ``Authorization: Bearer $DEVICE_TOKEN`` (the earlier implementation's
  shared token), the device id then taken from ``X-Device-Id`` or the JSON
  body's ``device_id``; off unless ``DEVICE_AUTH_ALLOW_LEGACY_TOKEN=true``,
  logged and counted (``core/devices/legacy_token.py``).

The authenticated device is stored as ``connection.state["device"]``.
"""

from __future__ import annotations

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection

from qris_soundbox.core.context import PlatformContext
from qris_soundbox.core.devices.errors import DeviceAuthFailed
from qris_soundbox.core.devices.verifier import VerifiedDevice
from qris_soundbox.core.logging import device_id_var


class _DeviceIdOnly(msgspec.Struct):
    device_id: str | None = None


async def _device_id_from_body(connection: ASGIConnection) -> str | None:
    if not isinstance(connection, Request):
        return None
    try:
        return msgspec.json.decode(await connection.body(), type=_DeviceIdOnly).device_id
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None  # the route's own body parsing reports what is wrong with it


def _bearer(connection: ASGIConnection) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def authenticate_device(connection: ASGIConnection) -> VerifiedDevice:
    known: VerifiedDevice | None = connection.state.get("device")
    if known is not None:  # the route policies (rate limit) ran first: authenticated, logged and counted once
        return known
    platform: PlatformContext = connection.app.state["platform"]
    device_id = connection.headers.get("x-device-id") or None
    secret = connection.headers.get("x-device-secret")
    if secret is not None:
        if not device_id:
            raise DeviceAuthFailed("X-Device-Id is required with X-Device-Secret")
        # Past RATE_LIMIT_DEVICE_AUTH_MAX wrong secrets even the right one waits for the
        # window: a guess then learns nothing, and the owner is back when it ends.
        await platform.rate_limiter.check("device_auth", device_id)
        device = await platform.device_verifier.verify(device_id, secret)
        if device is None:
            await platform.rate_limiter.hit("device_auth", device_id)
            raise DeviceAuthFailed("device credentials are invalid, or the device is not active")
    else:
        token = _bearer(connection)
        if token is None:
            raise DeviceAuthFailed("device credentials are required: X-Device-Id and X-Device-Secret")

        async def claimed_device_id() -> str | None:
            return device_id or await _device_id_from_body(connection)

        device = await platform.legacy_device_token.authenticate(token, claimed_device_id)
    connection.state["device"] = device
    # Tag this request's log lines with the device (the request middleware resets its own vars only).
    device_id_var.set(device.device_id)
    return device


def device_of(connection: ASGIConnection) -> VerifiedDevice:
    return connection.state["device"]
