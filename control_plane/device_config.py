"""Device configuration (the shadow) and remote commands: admin routes and the device API.

Routes only: parse → call ``core.devices.config_shadow`` / ``core.devices.commands`` → shape the response.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Request, get, patch, post
from litestar.params import PathParameter

from qris_soundbox.control_plane.auth import audit_actor
from qris_soundbox.control_plane.deps import JSONBody, Paging, Platform
from qris_soundbox.control_plane.device_auth import device_of
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.devices import commands, config_shadow
from qris_soundbox.core.errors import Forbidden
from qris_soundbox.core.schemas import Page

TAGS = ["device config and commands"]
DEVICE_TAGS = ["device API"]
DeviceId = Annotated[str, PathParameter(max_length=64)]
CommandId = Annotated[str, PathParameter(max_length=64)]


def _device_actor(request: Request, body_device_id: str | None) -> tuple[str, AuditActor]:
    device_id = device_of(request).device_id
    if body_device_id is not None and body_device_id != device_id:
        raise Forbidden("device_id in the body is not the authenticated device", details={"field": "device_id"})
    actor = audit_actor(request)
    return device_id, AuditActor(actor_type="device", actor_id=device_id, request_id=actor.request_id, ip=actor.ip)


@get(
    "/admin/devices/{device_id:str}/config",
    summary="The device's config shadow: desired, reported, drift",
    tags=TAGS,
    opt={"permission": "device:read"},
)
async def get_config(platform: Platform, device_id: DeviceId) -> config_shadow.ConfigState:
    async with platform.db.transaction() as conn:
        return await config_shadow.get_state(conn, device_id)


@patch(
    "/admin/devices/{device_id:str}/config",
    summary="Merge-patch the desired config (validated against the model) and push it to the device",
    tags=TAGS,
    opt={"permission": "device:config"},
)
async def patch_config(
    platform: Platform, request: Request, device_id: DeviceId, data: JSONBody[config_shadow.ConfigPatch]
) -> config_shadow.ConfigState:
    async with platform.db.transaction() as conn:
        return await config_shadow.update_desired(conn, audit_actor(request), device_id, data)


@get(
    "/admin/devices/{device_id:str}/config/status",
    summary="Where the config push stands: versions, drift, last push, attempts, last rejection",
    tags=TAGS,
    opt={"permission": "device:read"},
)
async def get_config_status(platform: Platform, device_id: DeviceId) -> config_shadow.ConfigStatus:
    async with platform.db.transaction() as conn:
        return await config_shadow.get_status(conn, device_id)


@post(
    "/admin/devices/{device_id:str}/config/retry-push",
    summary="Re-queue the latest desired config",
    tags=TAGS,
    status_code=200,
    opt={"permission": "device:config"},
)
async def retry_config_push(platform: Platform, request: Request, device_id: DeviceId) -> config_shadow.ConfigStatus:
    async with platform.db.transaction() as conn:
        return await config_shadow.retry_push(conn, audit_actor(request), device_id)


@post(
    "/admin/devices/{device_id:str}/commands",
    summary="Send a command to the device (queued until it expires)",
    tags=TAGS,
    opt={"permission": "device:command", "idempotent": True},
)
async def create_command(
    platform: Platform, request: Request, device_id: DeviceId, data: JSONBody[commands.CommandCreate]
) -> commands.Command:
    async with platform.db.transaction() as conn:
        return await commands.create_command(conn, audit_actor(request), device_id, data)


@get(
    "/admin/devices/{device_id:str}/commands",
    summary="The device's commands, newest first",
    tags=TAGS,
    opt={"permission": "device:read"},
)
async def list_commands(platform: Platform, device_id: DeviceId, page: Paging) -> Page[commands.Command]:
    async with platform.db.transaction() as conn:
        return await commands.list_commands(conn, device_id, page)


@get(
    "/admin/devices/{device_id:str}/commands/{command_id:str}",
    summary="One command and its status",
    tags=TAGS,
    opt={"permission": "device:read"},
)
async def get_command(platform: Platform, device_id: DeviceId, command_id: CommandId) -> commands.Command:
    async with platform.db.transaction() as conn:
        return await commands.get_command(conn, device_id, command_id)


@get(
    "/device/config",
    summary="The device's desired config and its version (same as the config downlink)",
    tags=DEVICE_TAGS,
    opt={"device": True},
)
async def device_get_config(platform: Platform, request: Request) -> config_shadow.DeviceConfigView:
    async with platform.db.transaction() as conn:
        return await config_shadow.device_view(conn, device_of(request).device_id)


@post(
    "/device/config/ack",
    summary="Ack a config version: applied or rejected (same as MQTT config/ack)",
    tags=DEVICE_TAGS,
    status_code=200,
    opt={"device": True},
)
async def device_ack_config(
    platform: Platform, request: Request, data: JSONBody[config_shadow.ConfigAck]
) -> config_shadow.ConfigState:
    device_id, actor = _device_actor(request, data.device_id)
    async with platform.db.transaction() as conn:
        return await config_shadow.acknowledge(conn, actor, device_id, data)


@post(
    "/device/commands/ack",
    summary="Ack a command: succeeded or failed (same as MQTT command/ack)",
    tags=DEVICE_TAGS,
    status_code=200,
    opt={"device": True},
)
async def device_ack_command(
    platform: Platform, request: Request, data: JSONBody[commands.CommandAck]
) -> commands.Command:
    device_id, actor = _device_actor(request, data.device_id)
    async with platform.db.transaction() as conn:
        return await commands.acknowledge(conn, actor, device_id, data)


routes = [
    get_config,
    patch_config,
    get_config_status,
    retry_config_push,
    create_command,
    list_commands,
    get_command,
    device_get_config,
    device_ack_config,
    device_ack_command,
]
