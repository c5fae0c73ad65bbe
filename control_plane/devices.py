"""Device routes: models, registry, binding, credentials, trace, and the device API.

Routes only: parse → call ``core.devices`` → shape the response.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Request, get, post
from litestar.params import FromPath, FromQuery, PathParameter, QueryParameter

from qris_soundbox.control_plane.auth import audit_actor
from qris_soundbox.control_plane.deps import JSONBody, Paging, Platform, search_parameter
from qris_soundbox.control_plane.device_auth import device_of
from qris_soundbox.core.devices import credentials, models, registry, trace
from qris_soundbox.core.devices.schemas import (
    AnnouncementKeys,
    BindRequest,
    Device,
    DeviceCreate,
    DeviceModel,
    DeviceModelCreate,
    DisableRequest,
    Heartbeat,
    HeartbeatRecorded,
    IssuedCredential,
    MqttMessage,
)
from qris_soundbox.core.errors import Forbidden
from qris_soundbox.core.schemas import Page

TAGS = ["devices"]
DeviceId = Annotated[str, PathParameter(max_length=64)]
ShortText = Annotated[str | None, QueryParameter(max_length=64)]


@get(
    "/admin/device-models",
    summary="List device models and their capabilities",
    tags=TAGS,
    opt={"permission": "device:read"},
)
async def list_device_models(platform: Platform) -> Page[DeviceModel]:
    async with platform.db.transaction() as conn:
        return Page(items=[_marked(platform, model) for model in await models.list_models(conn)])


@get("/admin/device-models/{model_id:str}", summary="One device model", tags=TAGS, opt={"permission": "device:read"})
async def get_device_model(platform: Platform, model_id: FromPath[str]) -> DeviceModel:
    async with platform.db.transaction() as conn:
        return _marked(platform, await models.get_model(conn, model_id))


def _marked(platform: Platform, model: DeviceModel) -> DeviceModel:
    """The model, saying whether its dialect can carry the signature (core knows no dialect)."""
    return msgspec.structs.replace(model, signs_announcements=model.dialect not in platform.unsigned_dialects)


@post(
    "/admin/device-models",
    summary="Register a device model (capabilities validated)",
    tags=TAGS,
    opt={"permission": "device_model:write"},
)
async def create_device_model(platform: Platform, request: Request, data: JSONBody[DeviceModelCreate]) -> DeviceModel:
    async with platform.db.transaction() as conn:
        return await models.create_model(conn, audit_actor(request), data)


@post("/admin/devices", summary="Register a device (status registered)", tags=TAGS, opt={"permission": "device:write"})
async def create_device(platform: Platform, request: Request, data: JSONBody[DeviceCreate]) -> Device:
    async with platform.db.transaction() as conn:
        return await registry.register_device(conn, audit_actor(request), data)


@get(
    "/admin/devices",
    summary="List devices (filters: status, model, terminal_id, merchant_id, online, drift)",
    tags=TAGS,
    opt={"permission": "device:read"},
)
async def list_devices(
    platform: Platform,
    page: Paging,
    status: FromQuery[Literal["registered", "active", "disabled", "retired"] | None] = None,
    model: ShortText = None,
    terminal_id: ShortText = None,
    merchant_id: ShortText = None,
    online: FromQuery[bool | None] = None,
    drift: FromQuery[bool | None] = None,
    search: Annotated[str | None, search_parameter("any part of the serial number")] = None,
) -> Page[Device]:
    async with platform.db.transaction() as conn:
        return await registry.list_devices(
            conn,
            page,
            status=status,
            model=model,
            terminal_id=terminal_id,
            merchant_id=merchant_id,
            online=online,
            drift=drift,
            serial=search,
        )


@get(
    "/admin/devices/{device_id:str}",
    summary="One device with its health summary",
    tags=TAGS,
    opt={"permission": "device:read"},
)
async def get_device(platform: Platform, device_id: DeviceId) -> Device:
    async with platform.db.transaction() as conn:
        return await registry.get_device(conn, device_id)


@post(
    "/admin/devices/{device_id:str}/bind",
    summary="Bind the device to a terminal (by terminal_id or terminal_code)",
    tags=TAGS,
    status_code=200,
    opt={"permission": "device:bind"},
)
async def bind_device(platform: Platform, request: Request, device_id: DeviceId, data: JSONBody[BindRequest]) -> Device:
    async with platform.db.transaction() as conn:
        return await registry.bind(conn, audit_actor(request), device_id, await registry.bind_target(conn, data))


@post(
    "/admin/devices/{device_id:str}/unbind",
    summary="Unbind the device from its terminal",
    tags=TAGS,
    status_code=200,
    opt={"permission": "device:bind"},
)
async def unbind_device(platform: Platform, request: Request, device_id: DeviceId) -> Device:
    async with platform.db.transaction() as conn:
        return await registry.unbind(conn, audit_actor(request), device_id)


@post(
    "/admin/devices/{device_id:str}/disable",
    summary="Disable: refuse its connections, drop its session",
    tags=TAGS,
    status_code=200,
    opt={"permission": "device:write"},
)
async def disable_device(
    platform: Platform, request: Request, device_id: DeviceId, data: JSONBody[DisableRequest | None] = None
) -> Device:
    async with platform.db.transaction() as conn:
        return await registry.disable(conn, audit_actor(request), device_id, data.reason if data else None)


@post(
    "/admin/devices/{device_id:str}/enable",
    summary="Enable a disabled device",
    tags=TAGS,
    status_code=200,
    opt={"permission": "device:write"},
)
async def enable_device(platform: Platform, request: Request, device_id: DeviceId) -> Device:
    async with platform.db.transaction() as conn:
        return await registry.enable(conn, audit_actor(request), device_id)


@post(
    "/admin/devices/{device_id:str}/retire",
    summary="Retire for good: unbound, credential destroyed",
    tags=TAGS,
    status_code=200,
    opt={"permission": "device:write"},
)
async def retire_device(platform: Platform, request: Request, device_id: DeviceId) -> Device:
    async with platform.db.transaction() as conn:
        return await registry.retire(conn, audit_actor(request), device_id)


@post(
    "/admin/devices/{device_id:str}/credentials/rotate",
    summary="Issue a new MQTT/HTTP secret (shown only in this response); the old one stops working",
    tags=TAGS,
    status_code=200,
    opt={"permission": "device:credential"},
)
async def rotate_credential(platform: Platform, request: Request, device_id: DeviceId) -> IssuedCredential:
    broker, keys = platform.device_broker_address(), platform.device_announcement_keys()
    async with platform.db.transaction() as conn:
        return await credentials.rotate(conn, audit_actor(request), device_id, broker, keys)


@get(
    "/admin/devices/{device_id:str}/mqtt-messages",
    summary="The device's MQTT trace (uplinks and downlinks)",
    tags=TAGS,
    opt={"permission": "device:read"},
)
async def list_mqtt_messages(
    platform: Platform,
    device_id: DeviceId,
    page: Paging,
    direction: FromQuery[Literal["uplink", "downlink"] | None] = None,
) -> Page[MqttMessage]:
    async with platform.db.transaction() as conn:
        await registry.get_device(conn, device_id)  # 404 for an unknown device, not an empty list
        return await trace.list_messages(conn, device_id, page, direction=direction)


@post(
    "/device/heartbeat",
    summary="Device heartbeat over HTTP (same as MQTT devices/<id>/uplink/heartbeat)",
    tags=["device API"],
    status_code=200,
    opt={"device": True, "rate_limit": "device"},
)
async def device_heartbeat(platform: Platform, request: Request, data: JSONBody[Heartbeat]) -> HeartbeatRecorded:
    device = device_of(request)
    if data.device_id is not None and data.device_id != device.device_id:
        raise Forbidden("device_id in the body is not the authenticated device", details={"field": "device_id"})
    return await platform.http_heartbeats.record(device.device_id, data)


@get(
    "/device/keys",
    summary="The platform's public keys that sign announcements (Ed25519; docs/announcement-signing.md)",
    tags=["device API"],
    opt={"device": True, "rate_limit": "device"},
)
async def device_announcement_keys(platform: Platform) -> AnnouncementKeys:
    return platform.device_announcement_keys()


routes = [
    list_device_models,
    get_device_model,
    create_device_model,
    create_device,
    list_devices,
    get_device,
    bind_device,
    unbind_device,
    disable_device,
    enable_device,
    retire_device,
    rotate_credential,
    list_mqtt_messages,
    device_heartbeat,
    device_announcement_keys,
]
