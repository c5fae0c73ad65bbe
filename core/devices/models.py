"""Device models: the capability catalogue that shapes every downlink.

Two models are built in (migration 020): ``generic-audio`` (speaker only) and
``generic-screen`` (speaker + screen, dynamic QR). Vendors' models are
registered through ``POST /admin/device-models`` and validated here, so a
model that cannot work is refused when it is registered, not at payment time.
"""

from __future__ import annotations

import asyncpg
import msgspec

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.devices.errors import DeviceModelExists, DeviceModelNotFound
from qris_soundbox.core.devices.schemas import Capabilities, DeviceModel, DeviceModelCreate
from qris_soundbox.core.errors import ValidationFailed

# Languages the announcement shaper can speak (SPEC §10).
SUPPORTED_LANGUAGES = ("id", "en")
# Commands the command service knows how to send; a model lists the subset it supports.
KNOWN_COMMANDS = ("reboot", "play_test_sound", "set_volume", "ota_update", "sync_time")


def validate_capabilities(capabilities: Capabilities) -> None:
    """Cross-field rules msgspec's per-field constraints cannot express."""
    problems: list[dict[str, str]] = []

    def problem(field: str, message: str) -> None:
        problems.append({"field": f"capabilities.{field}", "message": message})

    def subset(field: str, values: list[str], allowed: tuple[str, ...]) -> None:
        unknown = [value for value in values if value not in allowed]
        if unknown:
            problem(field, f"unknown value(s) {unknown}; supported: {list(allowed)}")
        if len(set(values)) != len(values):
            problem(field, f"{field} must not repeat")

    if capabilities.dynamic_qr and not capabilities.screen:
        problem("dynamic_qr", "a model without a screen cannot show a dynamic QR")
    subset("languages", capabilities.languages, SUPPORTED_LANGUAGES)
    subset("commands", capabilities.commands, KNOWN_COMMANDS)
    if capabilities.volume_min >= capabilities.volume_max:
        problem("volume_min", "volume_min must be below volume_max")
    if problems:
        raise ValidationFailed("the model's capabilities are inconsistent", details=problems)


def model_from_row(row: asyncpg.Record) -> DeviceModel:
    return DeviceModel(
        id=row["id"],
        name=row["name"],
        vendor=row["vendor"],
        capabilities=msgspec.convert(row["capabilities"], Capabilities),
        builtin=row["builtin"],
        dialect=row["dialect"],
        created_at=row["created_at"],
    )


async def list_models(conn: Connection) -> list[DeviceModel]:
    return [model_from_row(row) for row in await conn.fetch(QUERIES["device_model_list"])]


async def get_model(conn: Connection, model_id: str) -> DeviceModel:
    row = await conn.fetchrow(QUERIES["device_model_by_id"], model_id)
    if row is None:
        raise DeviceModelNotFound(model_id)
    return model_from_row(row)


async def capabilities_of_device(conn: Connection, device_id: str) -> Capabilities | None:
    """The capabilities of a device's model (None: no such device) — what shapers call."""
    row = await conn.fetchrow(QUERIES["device_by_id"], device_id)
    if row is None:
        return None
    return (await get_model(conn, row["model_id"])).capabilities


async def create_model(conn: Connection, actor: AuditActor, data: DeviceModelCreate) -> DeviceModel:
    validate_capabilities(data.capabilities)
    row = await conn.fetchrow(
        QUERIES["insert_device_model"], data.id, data.name, data.vendor, msgspec.to_builtins(data.capabilities)
    )
    if row is None:
        raise DeviceModelExists(f"device model {data.id!r} already exists", details={"id": data.id})
    await audit.record(
        conn,
        actor,
        "device_model.create",
        entity_type="device_model",
        entity_id=data.id,
        payload={"name": data.name, "vendor": data.vendor, "capabilities": msgspec.to_builtins(data.capabilities)},
    )
    return model_from_row(row)
