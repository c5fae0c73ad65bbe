"""Device configuration as a shadow: a versioned desired config, the reported one, and drift.

Operators merge-patch the desired config (validated against the device model's
capabilities, so nothing is discovered at payment time); every change is a new
version, pushed as a QoS 1 downlink through the outbox in the same transaction,
and supersedes the unacked pushes before it, so an offline device gets only the
latest desired config on reconnect. The device acks a version ``applied``
(the platform then records as reported the exact config it sent for that
version) or ``rejected`` with a reason. Rules and defaults: docs/device-config.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import asyncpg
import msgspec
from msgspec import UNSET, Meta, UnsetType

from qris_soundbox.core import audit, outbox
from qris_soundbox.core.announcement import AnnouncementCapabilities, check_can_announce
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import QUERIES, Connection, fetch_one
from qris_soundbox.core.devices import health, models, uplinks
from qris_soundbox.core.devices.errors import (
    ConfigNotSupported,
    ConfigVersionMismatch,
    DeviceNotFound,
    DeviceStateInvalid,
    MalformedUplink,
    UnknownConfigMessage,
    UnknownConfigVersion,
    VolumeOutOfRange,
)
from qris_soundbox.core.devices.schemas import Capabilities, Percent
from qris_soundbox.core.schemas import Body, Struct, Value

if TYPE_CHECKING:
    from qris_soundbox.core.context import PlatformContext
    from qris_soundbox.core.devices.uplinks import Uplink

DEFAULT_LANGUAGE = "id"
DEFAULT_HEARTBEAT_INTERVAL_S = health.HEARTBEAT_INTERVAL_S
DEFAULT_DISPLAY_BRIGHTNESS = 80
# Config downlinks wait this long for an offline device; after that the device still
# finds its desired config with GET /device/config, and retry-push re-queues it.
CONFIG_DOWNLINK_TTL = timedelta(days=30)

MessageId = Annotated[str, Meta(min_length=1, max_length=128)]
# The health summary calls a heartbeat stale after 3 × 60 s, so devices may beat
# faster than once a minute but never slower.
HeartbeatInterval = Annotated[int, Meta(ge=15, le=DEFAULT_HEARTBEAT_INTERVAL_S)]
TextTemplate = Annotated[str, Meta(min_length=1, max_length=500)]
Language = Annotated[str, Meta(min_length=2, max_length=8)]


# --------------------------------------------------------------------------- structs


class ConfigPatch(Body, kw_only=True):
    """``PATCH /admin/devices/{id}/config``: a JSON merge patch; ``null`` returns a key to its default."""

    volume: Percent | None | UnsetType = UNSET
    language: Language | None | UnsetType = UNSET
    announcement_text_template: TextTemplate | None | UnsetType = UNSET
    heartbeat_interval_s: HeartbeatInterval | None | UnsetType = UNSET
    display_brightness: Percent | None | UnsetType = UNSET  # models with a screen only


CONFIG_KEYS = tuple(ConfigPatch.__struct_fields__)


class ConfigState(Struct, kw_only=True):
    """The shadow: ``GET`` and ``PATCH /admin/devices/{id}/config``."""

    device_id: str
    desired_version: int
    desired: dict[str, Any]
    reported_version: int | None
    reported: dict[str, Any] | None
    reported_at: datetime | None
    drift: bool
    overrides: dict[str, Any]  # the keys operators set; the rest are the model's defaults
    defaults: dict[str, Any]
    push_message_id: str | None  # the latest config downlink
    updated_at: datetime | None


class PushState(Struct, kw_only=True):
    message_id: str
    version: int | None
    status: str  # pending | sent | acked | failed (rejected) | expired | superseded
    attempts: int
    queued_at: datetime
    sent_at: datetime | None
    acked_at: datetime | None
    expires_at: datetime


class Rejection(Struct, kw_only=True):
    version: int
    reason: str | None
    rejected_at: datetime


class ConfigStatus(Struct, kw_only=True):
    """``GET /admin/devices/{id}/config/status``: where the push stands."""

    device_id: str
    desired_version: int
    reported_version: int | None
    drift: bool
    pending_ack: bool  # the latest push is still waiting for the device
    last_push_at: datetime | None  # when the latest push was last sent to the device
    attempts: int  # sends of the latest push
    last_push: PushState | None
    last_rejection: Rejection | None


class DeviceConfigView(Struct, kw_only=True):
    """``GET /device/config``: what the device should run."""

    device_id: str
    version: int
    config: dict[str, Any]
    message_id: str | None  # the config downlink carrying this version, if one was queued


class ConfigAck(Body, kw_only=True):
    """``devices/<id>/uplink/config/ack`` and ``POST /device/config/ack``."""

    device_id: str | None = None  # optional; must be the authenticated device when given
    message_id: MessageId | None = None  # the downlink acked; HTTP devices that fetched the config may omit it
    version: Annotated[int, Meta(ge=0)]
    status: Literal["applied", "rejected"]
    reason: Annotated[str, Meta(max_length=500)] | None = None


# --------------------------------------------------------------------------- rules


def default_config(capabilities: Capabilities) -> dict[str, Any]:
    """Version 0: what every device of this model is assumed to run out of the box."""
    language = DEFAULT_LANGUAGE if DEFAULT_LANGUAGE in capabilities.languages else capabilities.languages[0]
    config: dict[str, Any] = {
        "volume": (capabilities.volume_min + capabilities.volume_max) // 2,
        "language": language,
        "announcement_text_template": None,  # the built-in sentence (SPEC §10)
        "heartbeat_interval_s": DEFAULT_HEARTBEAT_INTERVAL_S,
    }
    if capabilities.screen:
        config["display_brightness"] = DEFAULT_DISPLAY_BRIGHTNESS
    return config


def merge_patch(overrides: dict[str, Any], patch: ConfigPatch) -> dict[str, Any]:
    merged = dict(overrides)
    for key in CONFIG_KEYS:
        value = getattr(patch, key)
        if value is UNSET:
            continue
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def announcement_capabilities(capabilities: Capabilities) -> AnnouncementCapabilities:
    return AnnouncementCapabilities(
        screen=capabilities.screen,
        languages=list(capabilities.languages),
        announcement_format=capabilities.announcement_format,
        max_text_length=capabilities.max_text_length,
    )


def validate_config(capabilities: Capabilities, config: dict[str, Any]) -> None:
    """The full config against the model: what it cannot do is refused now, not at payment time."""
    volume = config["volume"]
    if not capabilities.volume_min <= volume <= capabilities.volume_max:
        raise VolumeOutOfRange(
            f"volume {volume} is outside this model's range {capabilities.volume_min}..{capabilities.volume_max}",
            details={"field": "volume", "volume_min": capabilities.volume_min, "volume_max": capabilities.volume_max},
        )
    if "display_brightness" in config and not capabilities.screen:
        raise ConfigNotSupported(
            "this device model has no screen: display_brightness does not apply",
            details={"field": "display_brightness"},
        )
    check_can_announce(
        announcement_capabilities(capabilities),
        config["language"],
        text_template=config["announcement_text_template"],
    )


def _drift(desired_version: int, reported_version: int | None) -> bool:
    return desired_version != (reported_version or 0)


def _state(device_id: str, capabilities: Capabilities, row: asyncpg.Record | None) -> ConfigState:
    defaults = default_config(capabilities)
    if row is None:
        return ConfigState(
            device_id=device_id,
            desired_version=0,
            desired=defaults,
            reported_version=None,
            reported=None,
            reported_at=None,
            drift=False,
            overrides={},
            defaults=defaults,
            push_message_id=None,
            updated_at=None,
        )
    return ConfigState(
        device_id=device_id,
        desired_version=row["desired_version"],
        desired=row["desired"],
        reported_version=row["reported_version"],
        reported=row["reported"],
        reported_at=row["reported_at"],
        drift=_drift(row["desired_version"], row["reported_version"]),
        overrides=row["overrides"],
        defaults=defaults,
        push_message_id=row["last_push_message_id"],
        updated_at=row["updated_at"],
    )


async def device_with_capabilities(conn: Connection, device_id: str) -> tuple[asyncpg.Record, Capabilities]:
    """The device row (404 if unknown) and its model's capabilities."""
    row = await conn.fetchrow(QUERIES["device_by_id"], device_id)
    if row is None:
        raise DeviceNotFound(device_id)
    return row, (await models.get_model(conn, row["model_id"])).capabilities


def refuse_if_retired(device: asyncpg.Record) -> None:
    if device["status"] == "retired":
        raise DeviceStateInvalid("a retired device cannot be configured", details={"status": "retired"})


async def _locked(conn: Connection, device_id: str, capabilities: Capabilities) -> asyncpg.Record:
    await conn.execute(QUERIES["device_config_ensure"], device_id, default_config(capabilities))
    return await fetch_one(conn, "device_config_lock", device_id)


async def _push(conn: Connection, device_id: str, version: int, config: dict[str, Any]) -> str:
    """Queue the config downlink, superseding every unacked one before it."""
    await conn.execute(QUERIES["supersede_config_downlinks"], device_id)
    message_id = await outbox.enqueue(
        conn,
        device_id=device_id,
        kind="config",
        body={"version": version, "config": config},
        expires_at=datetime.now(UTC) + CONFIG_DOWNLINK_TTL,
    )
    await conn.execute(QUERIES["device_config_set_pushed"], device_id, message_id)
    return message_id


async def get_state(conn: Connection, device_id: str) -> ConfigState:
    _, capabilities = await device_with_capabilities(conn, device_id)
    return _state(device_id, capabilities, await conn.fetchrow(QUERIES["device_config_by_device"], device_id))


async def update_desired(conn: Connection, actor: AuditActor, device_id: str, patch: ConfigPatch) -> ConfigState:
    """Merge ``patch`` into the desired config; a change is a new version, pushed at once."""
    device, capabilities = await device_with_capabilities(conn, device_id)
    refuse_if_retired(device)
    row = await _locked(conn, device_id, capabilities)
    overrides = merge_patch(row["overrides"], patch)
    desired = default_config(capabilities) | overrides
    validate_config(capabilities, desired)
    changes = msgspec.to_builtins(patch)  # UNSET fields are left out: exactly what was asked
    if desired == row["desired"]:
        # Nothing the device would notice: keep the version, push nothing.
        await conn.execute(QUERIES["device_config_set_desired"], device_id, overrides, desired, row["desired_version"])
        return await get_state(conn, device_id)
    version = row["desired_version"] + 1
    await conn.execute(QUERIES["insert_device_config_version"], device_id, version, desired, changes)
    await conn.execute(QUERIES["device_config_set_desired"], device_id, overrides, desired, version)
    message_id = await _push(conn, device_id, version, desired)
    await audit.record(
        conn,
        actor,
        "device.config.update",
        entity_type="device",
        entity_id=device_id,
        merchant_id=device["merchant_id"],
        payload={"version": version, "changes": changes, "message_id": message_id},
    )
    return await get_state(conn, device_id)


async def retry_push(conn: Connection, actor: AuditActor, device_id: str) -> ConfigStatus:
    """Re-queue the latest desired config as a new downlink (the unacked one is superseded)."""
    device, capabilities = await device_with_capabilities(conn, device_id)
    refuse_if_retired(device)
    row = await _locked(conn, device_id, capabilities)
    message_id = await _push(conn, device_id, row["desired_version"], row["desired"])
    await audit.record(
        conn,
        actor,
        "device.config.retry_push",
        entity_type="device",
        entity_id=device_id,
        merchant_id=device["merchant_id"],
        payload={"version": row["desired_version"], "message_id": message_id},
    )
    return await get_status(conn, device_id)


async def get_status(conn: Connection, device_id: str) -> ConfigStatus:
    state = await get_state(conn, device_id)
    row = await conn.fetchrow(QUERIES["device_config_by_device"], device_id)
    push = None
    if state.push_message_id is not None:
        downlink = await fetch_one(conn, "downlink_by_message", state.push_message_id)
        push = PushState(
            message_id=downlink["message_id"],
            version=downlink["payload"].get("version"),
            status=downlink["status"],
            attempts=downlink["attempts"],
            queued_at=downlink["created_at"],
            sent_at=downlink["sent_at"],
            acked_at=downlink["acked_at"],
            expires_at=downlink["expires_at"],
        )
    rejection = None
    if row is not None and row["last_rejected_version"] is not None:
        rejection = Rejection(
            version=row["last_rejected_version"],
            reason=row["last_rejection_reason"],
            rejected_at=row["last_rejected_at"],
        )
    return ConfigStatus(
        device_id=device_id,
        desired_version=state.desired_version,
        reported_version=state.reported_version,
        drift=state.drift,
        pending_ack=push is not None and push.status in ("pending", "sent") and push.expires_at > datetime.now(UTC),
        last_push_at=push.sent_at if push else None,
        attempts=push.attempts if push else 0,
        last_push=push,
        last_rejection=rejection,
    )


async def device_view(conn: Connection, device_id: str) -> DeviceConfigView:
    state = await get_state(conn, device_id)
    return DeviceConfigView(
        device_id=device_id, version=state.desired_version, config=state.desired, message_id=state.push_message_id
    )


async def _config_of_version(
    conn: Connection,
    device_id: str,
    capabilities: Capabilities,
    row: asyncpg.Record,
    version: int,
) -> dict[str, Any]:
    if version == row["desired_version"]:
        return row["desired"]
    if version == 0:
        return default_config(capabilities)
    config = await conn.fetchval(QUERIES["device_config_version"], device_id, version)
    if config is None:
        raise UnknownConfigVersion(
            f"config version {version} was never issued to this device",
            details={"version": version, "desired_version": row["desired_version"]},
        )
    return config


async def acknowledge(conn: Connection, actor: AuditActor, device_id: str, ack: ConfigAck) -> ConfigState:
    """The device applied or rejected a version; the MQTT and HTTP acks both come here."""
    device, capabilities = await device_with_capabilities(conn, device_id)
    row = await _locked(conn, device_id, capabilities)
    if ack.message_id is not None:
        downlink = await conn.fetchrow(QUERIES["config_downlink_by_message"], device_id, ack.message_id)
        if downlink is None:
            raise UnknownConfigMessage(
                "no config downlink with this message_id was sent to this device",
                details={"message_id": ack.message_id},
            )
        if downlink["payload"].get("version") != ack.version:
            raise ConfigVersionMismatch(
                f"message {ack.message_id} carried version {downlink['payload'].get('version')}, not {ack.version}",
                details={"message_id": ack.message_id, "version": ack.version},
            )
    config = await _config_of_version(conn, device_id, capabilities, row, ack.version)
    applied = ack.status == "applied"
    await conn.execute(
        QUERIES["close_config_downlinks"],
        device_id,
        ack.version,
        "acked" if applied else "failed",
        None if applied else ack.reason,
    )
    if applied:
        await conn.execute(QUERIES["device_config_set_reported"], device_id, config, ack.version)
    else:
        await conn.execute(QUERIES["device_config_set_rejected"], device_id, ack.version, ack.reason)
    await audit.record(
        conn,
        actor,
        f"device.config.{ack.status}",
        entity_type="device",
        entity_id=device_id,
        merchant_id=device["merchant_id"],
        payload={"version": ack.version, "message_id": ack.message_id, "reason": ack.reason},
    )
    return await get_state(conn, device_id)


def device_actor(device_id: str) -> AuditActor:
    return AuditActor(actor_type="device", actor_id=device_id)


AckT = TypeVar("AckT", bound=Body)
Acknowledge = Callable[[Connection, AuditActor, str, AckT], Awaitable[object]]


async def handle_ack_uplink(
    platform: PlatformContext, uplink: Uplink, type_: type[AckT], acknowledge_: Acknowledge[AckT]
) -> None:
    """An ack uplink: decode, refuse a ``device_id`` other than the publisher, then the HTTP path's core function."""
    ack = uplinks.decode(uplink.payload, type_)
    if getattr(ack, "device_id", None) not in (None, uplink.device_id):
        raise MalformedUplink("device_id in the payload is not the publishing device")
    async with platform.db.transaction() as conn:
        await acknowledge_(conn, device_actor(uplink.device_id), uplink.device_id, ack)


async def ack_uplink(platform: PlatformContext, uplink: Uplink) -> None:
    """``devices/<id>/uplink/config/ack``: the same core function as ``POST /device/config/ack``."""
    await handle_ack_uplink(platform, uplink, ConfigAck, acknowledge)


# --------------------------------------------------------------------------- readers for other domains


class AnnouncementPreferences(Value, kw_only=True, frozen=True):
    language: str
    text_template: str | None


def preferences_of(desired: dict[str, Any] | None, capabilities: Capabilities | None) -> AnnouncementPreferences:
    """The configured (desired) language and text template; the model's defaults when never configured."""
    if desired is not None:
        return AnnouncementPreferences(
            language=desired.get("language", DEFAULT_LANGUAGE), text_template=desired.get("announcement_text_template")
        )
    language = default_config(capabilities)["language"] if capabilities is not None else DEFAULT_LANGUAGE
    return AnnouncementPreferences(language=language, text_template=None)


async def announcement_preferences(conn: Connection, device_id: str) -> AnnouncementPreferences:
    row = await conn.fetchrow(QUERIES["device_config_by_device"], device_id)
    if row is not None:
        return preferences_of(row["desired"], None)
    return preferences_of(None, await models.capabilities_of_device(conn, device_id))


async def device_language(conn: Connection, device_id: str) -> str:
    """The language payment announcements use for this device (default ``"id"``)."""
    return (await announcement_preferences(conn, device_id)).language
