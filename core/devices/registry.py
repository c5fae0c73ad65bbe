"""The device registry: register, list, bind to a terminal, disable, enable, retire.

Statuses: ``registered`` (no credential yet) → ``active`` (first credential
issued) ⇄ ``disabled``; any of them → ``retired`` (final: unbound, credential
destroyed). A terminal holds at most one device per role (partial unique
index ``devices_one_per_terminal_role``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.devices import health
from qris_soundbox.core.devices.changes import DeviceChange, announce_change
from qris_soundbox.core.devices.errors import (
    DeviceAlreadyBound,
    DeviceModelNotFound,
    DeviceNotFound,
    DeviceStateInvalid,
    SerialNumberTaken,
    TerminalCodeAmbiguous,
    TerminalNotFound,
    TerminalOccupied,
)
from qris_soundbox.core.devices.schemas import BindRequest, Credential, Device, DeviceCreate
from qris_soundbox.core.errors import ValidationFailed
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.paging import PageQuery, contains_pattern
from qris_soundbox.core.schemas import Page

BINDABLE_STATUSES = ("registered", "active")


def device_from_row(row: asyncpg.Record, pending_acks: int = 0, now: datetime | None = None) -> Device:
    summary = health.health_summary(
        status=row["status"],
        has_credential=row["credential_fingerprint"] is not None,
        online=row["online"],
        last_seen_at=row["last_seen_at"],
        last_heartbeat_at=row["last_heartbeat_at"],
        battery_level=row["battery_level"],
        network_strength=row["network_strength"],
        pending_acks=pending_acks,
        now=now or datetime.now(UTC),
    )
    return Device(
        id=row["id"],
        serial_number=row["serial_number"],
        model=row["model_id"],
        status=row["status"],
        role=row["role"],
        terminal_id=row["terminal_id"],
        merchant_id=row["merchant_id"],
        outlet_id=row["outlet_id"],
        bound_at=row["bound_at"],
        credential=Credential(fingerprint=row["credential_fingerprint"], rotated_at=row["credential_rotated_at"]),
        disabled_reason=row["disabled_reason"],
        online=row["online"],
        last_seen_at=row["last_seen_at"],
        last_heartbeat_at=row["last_heartbeat_at"],
        battery_level=row["battery_level"],
        network_strength=row["network_strength"],
        firmware_version=row["firmware_version"],
        heartbeat=row["heartbeat"],
        acl_denials=row["acl_denials"],
        last_acl_denial_at=row["last_acl_denial_at"],
        mqtt_username=row["id"],
        health_summary=summary,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        retired_at=row["retired_at"],
        terminal_code=row["terminal_code"],
        terminal_name=row["terminal_name"],
        outlet_name=row["outlet_name"],
        merchant_name=row["merchant_name"],
        uplinks_dropped=row["uplinks_dropped"],
        last_uplink_drop_at=row["last_uplink_drop_at"],
    )


async def get_device(conn: Connection, device_id: str) -> Device:
    row = await conn.fetchrow(QUERIES["device_by_id"], device_id)
    if row is None:
        raise DeviceNotFound(device_id)
    acks = await health.pending_acks(conn, [device_id])
    return device_from_row(row, acks.get(device_id, 0))


async def list_devices(
    conn: Connection,
    page: PageQuery,
    *,
    status: str | None = None,
    model: str | None = None,
    terminal_id: str | None = None,
    merchant_id: str | None = None,
    online: bool | None = None,
    drift: bool | None = None,
    serial: str | None = None,
) -> Page[Device]:
    """``serial``: any part of the serial number (a technician reads a few characters off the label)."""
    rows = await conn.fetch(
        QUERIES["device_page"],
        page.cursor,
        page.fetch_limit,
        status,
        model,
        terminal_id,
        merchant_id,
        online,
        drift,
        contains_pattern(serial),
    )
    acks = await health.pending_acks(conn, [row["id"] for row in rows])
    now = datetime.now(UTC)
    return page.page(rows, lambda row: device_from_row(row, acks.get(row["id"], 0), now))


async def register_device(conn: Connection, actor: AuditActor, data: DeviceCreate) -> Device:
    if await conn.fetchrow(QUERIES["device_model_by_id"], data.model) is None:
        raise DeviceModelNotFound(data.model)
    device_id = new_id("dev")
    if await conn.fetchval(QUERIES["insert_device"], device_id, data.serial_number, data.model) is None:
        raise SerialNumberTaken(
            f"serial number {data.serial_number!r} is already registered", details={"serial_number": data.serial_number}
        )
    await audit.record(
        conn,
        actor,
        "device.create",
        entity_type="device",
        entity_id=device_id,
        payload={"serial_number": data.serial_number, "model": data.model},
    )
    return await get_device(conn, device_id)


async def _locked(conn: Connection, device_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(QUERIES["device_lock"], device_id)
    if row is None:
        raise DeviceNotFound(device_id)
    return row


async def bind_target(conn: Connection, request: BindRequest) -> str:
    """The terminal id a bind names, by id or by the code on its QRIS."""
    if (request.terminal_id is None) == (request.terminal_code is None):
        raise ValidationFailed(
            "name the terminal by terminal_id or by terminal_code (one of them)", details={"field": "terminal_id"}
        )
    if request.terminal_id is not None:
        return request.terminal_id
    code = request.terminal_code
    ids = [row["id"] for row in await conn.fetch(QUERIES["terminal_ids_by_code"], code)]
    if not ids:
        raise TerminalNotFound(f"no terminal has the code {code!r}", details={"terminal_code": code})
    if len(ids) > 1:
        raise TerminalCodeAmbiguous(
            f"several merchants have a terminal {code!r}: bind by terminal_id", details={"terminal_code": code}
        )
    return ids[0]


async def bind(conn: Connection, actor: AuditActor, device_id: str, terminal_id: str) -> Device:
    device = await _locked(conn, device_id)
    if device["status"] not in BINDABLE_STATUSES:
        raise DeviceStateInvalid(f"a {device['status']} device cannot be bound", details={"status": device["status"]})
    if device["terminal_id"] is not None:
        raise DeviceAlreadyBound(
            f"device is already bound to terminal {device['terminal_id']}; unbind it first",
            details={"terminal_id": device["terminal_id"]},
        )
    terminal = await conn.fetchrow(QUERIES["device_bind_target_terminal"], terminal_id)
    if terminal is None:
        raise TerminalNotFound(f"terminal {terminal_id!r} does not exist", details={"terminal_id": terminal_id})
    occupant = await conn.fetchval(QUERIES["device_bound_at_terminal"], terminal_id, device["role"])
    if occupant is not None:
        raise TerminalOccupied(
            f"terminal {terminal_id} already has a {device['role']} device ({occupant})",
            details={"terminal_id": terminal_id, "device_id": occupant, "role": device["role"]},
        )
    try:
        async with conn.transaction():  # savepoint: a concurrent bind loses on the unique index
            await conn.execute(QUERIES["device_bind"], device_id, terminal_id)
    except asyncpg.UniqueViolationError:
        raise TerminalOccupied(
            f"terminal {terminal_id} already has a {device['role']} device",
            details={"terminal_id": terminal_id, "role": device["role"]},
        ) from None
    await audit.record(
        conn,
        actor,
        "device.bind",
        entity_type="device",
        entity_id=device_id,
        merchant_id=terminal["merchant_id"],
        payload={"terminal_id": terminal_id, "role": device["role"]},
    )
    return await get_device(conn, device_id)


async def unbind(conn: Connection, actor: AuditActor, device_id: str) -> Device:
    device = await _locked(conn, device_id)
    if device["terminal_id"] is not None:
        terminal = await conn.fetchrow(QUERIES["device_bind_target_terminal"], device["terminal_id"])
        await conn.execute(QUERIES["device_unbind"], device_id)
        await audit.record(
            conn,
            actor,
            "device.unbind",
            entity_type="device",
            entity_id=device_id,
            merchant_id=terminal["merchant_id"] if terminal else None,
            payload={"terminal_id": device["terminal_id"]},
        )
    return await get_device(conn, device_id)


async def disable(conn: Connection, actor: AuditActor, device_id: str, reason: str | None) -> Device:
    device = await _locked(conn, device_id)
    if device["status"] == "retired":
        raise DeviceStateInvalid("a retired device cannot be disabled", details={"status": "retired"})
    if device["status"] != "disabled":
        await conn.execute(QUERIES["device_set_status"], device_id, "disabled", reason)
        await announce_change(
            conn, DeviceChange(device_id=device_id, fingerprint=device["credential_fingerprint"], status="disabled")
        )
        await audit.record(
            conn,
            actor,
            "device.disable",
            entity_type="device",
            entity_id=device_id,
            payload={"reason": reason, "previous_status": device["status"]},
        )
    return await get_device(conn, device_id)


async def enable(conn: Connection, actor: AuditActor, device_id: str) -> Device:
    device = await _locked(conn, device_id)
    if device["status"] == "retired":
        raise DeviceStateInvalid("a retired device cannot be enabled", details={"status": "retired"})
    if device["status"] == "disabled":
        status = "active" if device["credential_fingerprint"] else "registered"
        await conn.execute(QUERIES["device_set_status"], device_id, status, None)
        await announce_change(
            conn, DeviceChange(device_id=device_id, fingerprint=device["credential_fingerprint"], status=status)
        )
        await audit.record(
            conn, actor, "device.enable", entity_type="device", entity_id=device_id, payload={"status": status}
        )
    return await get_device(conn, device_id)


async def retire(conn: Connection, actor: AuditActor, device_id: str) -> Device:
    device = await _locked(conn, device_id)
    if device["status"] != "retired":
        await conn.execute(QUERIES["device_retire"], device_id)
        await announce_change(conn, DeviceChange(device_id=device_id, fingerprint=None, status="retired"))
        await audit.record(
            conn,
            actor,
            "device.retire",
            entity_type="device",
            entity_id=device_id,
            payload={"previous_status": device["status"], "unbound_terminal_id": device["terminal_id"]},
        )
    return await get_device(conn, device_id)
