"""Remote commands to a device: reboot, play a test sound, set the volume, OTA update, sync time.

A command is queued as a QoS 1 downlink through the outbox in the same
transaction as its row. Its status is its outbox row's status — the one source
of truth, so the publisher needs no hook: ``pending`` reads ``queued``, then
``sent``, and the device's ack closes it ``acked`` or ``failed``; past its
expiry it is ``expired`` (the publisher's sweep writes that; reads say so
already). See docs/device-config.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import asyncpg
import msgspec
from msgspec import Meta

from qris_soundbox.core import audit, outbox
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.devices.config_shadow import (
    MessageId,
    device_with_capabilities,
    handle_ack_uplink,
    refuse_if_retired,
)
from qris_soundbox.core.devices.errors import (
    CommandClosed,
    CommandMessageMismatch,
    CommandNotFound,
    CommandNotSupported,
    VolumeOutOfRange,
)
from qris_soundbox.core.devices.schemas import Capabilities, Percent
from qris_soundbox.core.errors import ValidationFailed
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.paging import PageQuery
from qris_soundbox.core.schemas import Body, Page, Struct

if TYPE_CHECKING:
    from qris_soundbox.core.context import PlatformContext
    from qris_soundbox.core.devices.uplinks import Uplink

CommandType = Literal["reboot", "play_test_sound", "set_volume", "ota_update", "sync_time"]
DEFAULT_EXPIRES_IN_S = 3600
MIN_EXPIRES_IN_S = 10
MAX_EXPIRES_IN_S = 7 * 24 * 3600


# --------------------------------------------------------------------------- structs


class NoParams(Body, kw_only=True):
    """``reboot``, ``play_test_sound``, ``sync_time``: nothing to say (the server adds ``server_time`` to sync_time)."""


class SetVolumeParams(Body, kw_only=True):
    volume: Percent


class OtaUpdateParams(Body, kw_only=True):
    url: Annotated[str, Meta(min_length=9, max_length=2048)]  # https only, checked below
    checksum: Annotated[str, Meta(pattern=r"^[0-9A-Fa-f]{64}$")]  # SHA-256 of the image, hex
    version: Annotated[str, Meta(min_length=1, max_length=64)] | None = None


PARAMS: dict[str, type[Body]] = {
    "reboot": NoParams,
    "play_test_sound": NoParams,
    "set_volume": SetVolumeParams,
    "ota_update": OtaUpdateParams,
    "sync_time": NoParams,
}


class CommandCreate(Body, kw_only=True):
    type: CommandType
    params: dict[str, Any] | None = None
    expires_in_s: Annotated[int, Meta(ge=MIN_EXPIRES_IN_S, le=MAX_EXPIRES_IN_S)] | None = None


class Command(Struct, kw_only=True):
    id: str
    device_id: str
    type: str
    params: dict[str, Any]
    status: str  # queued | sent | acked | failed | expired
    message_id: str
    attempts: int
    detail: str | None  # the device's detail from its ack
    created_by: str | None
    created_at: datetime
    sent_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime


class CommandAck(Body, kw_only=True):
    """``devices/<id>/uplink/command/ack`` and ``POST /device/commands/ack``."""

    device_id: str | None = None  # optional; must be the authenticated device when given
    message_id: MessageId | None = None  # the command's downlink; checked when given
    command_id: Annotated[str, Meta(min_length=1, max_length=64)]
    status: Literal["succeeded", "failed"]
    detail: Annotated[str, Meta(max_length=1000)] | None = None


# --------------------------------------------------------------------------- rules


def validate_params(capabilities: Capabilities, data: CommandCreate) -> dict[str, Any]:
    """The params for the command type (400 on shape, 422 on what the model cannot do), as sent."""
    try:
        params = msgspec.convert(data.params or {}, PARAMS[data.type])
    except msgspec.ValidationError as exc:
        raise ValidationFailed(
            f"invalid params for {data.type}: {exc}", details={"field": "params", "type": data.type}
        ) from None
    if isinstance(params, SetVolumeParams) and not capabilities.volume_min <= params.volume <= capabilities.volume_max:
        raise VolumeOutOfRange(
            f"volume {params.volume} is outside this model's range {capabilities.volume_min}..{capabilities.volume_max}",
            details={
                "field": "params.volume",
                "volume_min": capabilities.volume_min,
                "volume_max": capabilities.volume_max,
            },
        )
    if isinstance(params, OtaUpdateParams):
        url = urlsplit(params.url)
        if url.scheme != "https" or not url.hostname or any(c.isspace() for c in params.url):
            raise ValidationFailed("ota_update url must be an https URL", details={"field": "params.url"})
        params = msgspec.structs.replace(params, checksum=params.checksum.lower())
    built = msgspec.to_builtins(params)
    if data.type == "sync_time":
        built["server_time"] = datetime.now(UTC).isoformat()
    return built


def _command(row: asyncpg.Record) -> Command:
    return Command(
        id=row["id"],
        device_id=row["device_id"],
        type=row["type"],
        params=row["params"],
        status=row["status"],
        message_id=row["message_id"],
        attempts=row["attempts"],
        detail=row["result_detail"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        sent_at=row["sent_at"],
        completed_at=row["completed_at"],
        expires_at=row["expires_at"],
    )


async def get_command(conn: Connection, device_id: str, command_id: str) -> Command:
    row = await conn.fetchrow(QUERIES["device_command"], device_id, command_id)
    if row is None:
        raise CommandNotFound(
            f"command {command_id!r} of device {device_id!r} does not exist", details={"command_id": command_id}
        )
    return _command(row)


async def list_commands(conn: Connection, device_id: str, page: PageQuery) -> Page[Command]:
    await device_with_capabilities(conn, device_id)  # 404 for an unknown device, not an empty list
    rows = await conn.fetch(QUERIES["device_command_page"], device_id, page.cursor, page.fetch_limit)
    return page.page(rows, _command)


async def create_command(conn: Connection, actor: AuditActor, device_id: str, data: CommandCreate) -> Command:
    device, capabilities = await device_with_capabilities(conn, device_id)
    refuse_if_retired(device)
    if data.type not in capabilities.commands:
        raise CommandNotSupported(
            f"device model {device['model_id']!r} does not support the {data.type} command",
            details={"type": data.type, "model": device["model_id"], "supported": list(capabilities.commands)},
        )
    params = validate_params(capabilities, data)
    command_id = new_id("cmd")
    expires_at = datetime.now(UTC) + timedelta(seconds=data.expires_in_s or DEFAULT_EXPIRES_IN_S)
    message_id = await outbox.enqueue(
        conn,
        device_id=device_id,
        kind="command",
        body={"command_id": command_id, "type": data.type, "params": params, "expires_at": expires_at.isoformat()},
        expires_at=expires_at,
    )
    await conn.execute(
        QUERIES["insert_device_command"], command_id, device_id, data.type, params, message_id, actor.actor_id
    )
    await audit.record(
        conn,
        actor,
        "device.command.create",
        entity_type="device",
        entity_id=device_id,
        merchant_id=device["merchant_id"],
        payload={
            "command_id": command_id,
            "type": data.type,
            "params": params,
            "message_id": message_id,
            "expires_at": expires_at.isoformat(),
        },
    )
    return await get_command(conn, device_id, command_id)


async def acknowledge(conn: Connection, actor: AuditActor, device_id: str, ack: CommandAck) -> Command:
    """The device's outcome; the MQTT and HTTP acks both come here. A repeated ack answers the same."""
    device, _ = await device_with_capabilities(conn, device_id)
    command = await get_command(conn, device_id, ack.command_id)  # another device's command: not found
    if ack.message_id is not None and ack.message_id != command.message_id:
        raise CommandMessageMismatch(
            "message_id is not the downlink of this command",
            details={"command_id": ack.command_id, "message_id": ack.message_id},
        )
    outcome = "acked" if ack.status == "succeeded" else "failed"
    closed = await conn.fetchval(QUERIES["close_command_downlink"], device_id, command.message_id, outcome, ack.detail)
    if closed is None:
        command = await get_command(conn, device_id, command.id)  # a concurrent ack may just have closed it
        if command.status == outcome:
            return command  # the device repeated its ack (it may not have seen our answer)
        raise CommandClosed(
            f"command {command.id} is already {command.status}",
            details={"command_id": command.id, "status": command.status},
        )
    await conn.execute(QUERIES["device_command_set_result"], command.id, ack.detail)
    await audit.record(
        conn,
        actor,
        f"device.command.{outcome}",
        entity_type="device",
        entity_id=device_id,
        merchant_id=device["merchant_id"],
        payload={"command_id": command.id, "type": command.type, "status": ack.status, "detail": ack.detail},
    )
    return await get_command(conn, device_id, command.id)


async def ack_uplink(platform: PlatformContext, uplink: Uplink) -> None:
    """``devices/<id>/uplink/command/ack``: the same core function as ``POST /device/commands/ack``."""
    await handle_ack_uplink(platform, uplink, CommandAck, acknowledge)
