"""The device outbox: downlinks written in the transaction of the change they
announce, delivered at least once by the broker process, acknowledged by the
device (devices de-duplicate by ``message_id``).

Statuses: ``pending`` (written) → ``sent`` (handed to the device's session;
re-sent with back-off until acked) → ``acked``; a dynamic-QR reply, which
expects no ack, is ``delivered`` once handed over; or ``expired`` /
``skipped_late`` (a payment announcement past its age is never played late)
/ ``superseded`` (a newer config replaced it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from qris_soundbox.core.announcement_signing import SIGNED_KINDS
from qris_soundbox.core.db import QUERIES, Connection, Database
from qris_soundbox.core.ids import new_id

# LISTEN channel: ``enqueue`` notifies it with the device id, so the broker process delivers on commit.
CHANNEL = "device_outbox"

TOPIC_SUFFIX = {
    "payment": "payment",
    "dynamic_qr_response": "dynamic-qr/response",
    "config": "config",
    "command": "command",
}


class NewDownlink(msgspec.Struct, kw_only=True):
    """A downlink about to be queued: ``enqueue_downlink`` (sql/migrations/080) writes it as is."""

    id: str
    message_id: str
    device_id: str
    kind: str
    topic: str
    payload: dict[str, Any]
    expires_at: datetime
    transaction_id: str | None = None
    # A kind that is signed (core/announcement_signing.py): enqueue_downlink gives it the device's next counter
    # and the broker signs it when it hands it over (the payload stored is the unsigned one).
    signed: bool = False


class Downlink(NewDownlink, kw_only=True):
    """A downlink as operators see it (``GET /admin/devices/{id}/notifications``)."""

    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    acked_at: datetime | None
    counter: int | None = None  # the announcement counter it is signed with (docs/announcement-signing.md)


class NotificationState(msgspec.Struct, kw_only=True):
    """A transaction's announcement, as its detail shows it."""

    message_id: str
    device_id: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    acked_at: datetime | None
    expires_at: datetime


def notification_state(row: asyncpg.Record) -> NotificationState:
    """A ``payment_notification_for_transaction`` row as the transaction detail shows it."""
    return NotificationState(**{name: row[name] for name in NotificationState.__struct_fields__})


def downlink_topic(device_id: str, kind: str) -> str:
    return f"devices/{device_id}/downlink/{TOPIC_SUFFIX[kind]}"


def new_downlink(
    *, device_id: str, kind: str, body: dict[str, Any], expires_at: datetime, transaction_id: str | None = None
) -> NewDownlink:
    message_id = new_id("msg")
    return NewDownlink(
        id=new_id("obx"),
        message_id=message_id,
        device_id=device_id,
        kind=kind,
        topic=downlink_topic(device_id, kind),
        payload={"message_id": message_id, **body},
        expires_at=expires_at,
        transaction_id=transaction_id,
        signed=kind in SIGNED_KINDS,
    )


async def enqueue(
    conn: Connection,
    *,
    device_id: str,
    kind: str,
    body: dict[str, Any],
    expires_at: datetime,
    transaction_id: str | None = None,
) -> str:
    """Queue one downlink on ``conn``'s transaction (the NOTIFY goes out on commit); returns its ``message_id``."""
    return await queue(
        conn,
        new_downlink(device_id=device_id, kind=kind, body=body, expires_at=expires_at, transaction_id=transaction_id),
    )


async def queue(conn: Connection, downlink: NewDownlink) -> str:
    await conn.execute(QUERIES["enqueue_downlink"], downlink)
    return downlink.message_id


async def acknowledge(db: Database, device_id: str, message_id: str, kind: str | None = None) -> asyncpg.Record | None:
    """The device's ack (of a downlink of ``kind``); None if unknown, not its own, or already closed."""
    return await db.fetchrow("acknowledge_downlink", device_id, message_id, kind)


async def unacked_counts(conn: Connection, device_ids: list[str]) -> dict[str, int]:
    """Downlinks each device has not acknowledged yet (payments, config, commands)."""
    rows = await conn.fetch(QUERIES["unacked_downlink_counts"], device_ids)
    return {row["device_id"]: row["pending"] for row in rows}


# -- delivery bookkeeping, for the broker's delivery loop (broker/outbox_publisher.py) ---------------------


class DueDownlink(msgspec.Struct, frozen=True):
    """A downlink to hand to its device's session now."""

    id: str
    message_id: str
    device_id: str
    kind: str
    topic: str
    payload: dict[str, Any]
    counter: int | None  # a signed kind's (sql/migrations/220)


async def expire_overdue(db: Database, limit: int) -> list[asyncpg.Record]:
    """Close what is past its expiry, at most ``limit`` rows: a payment announcement is ``skipped_late``
    (never played late)."""
    return await db.fetch("expire_downlinks", limit)


async def devices_with_due_downlinks(db: Database, instance_id: str, limit: int) -> list[str]:
    """Devices with something due, but for those online on another broker node (it delivers them)."""
    return [row["device_id"] for row in await db.fetch("due_downlink_devices", limit, instance_id)]


async def defer_for_offline(db: Database, device_ids: list[str], seconds: float, limit: int) -> None:
    """Offline devices' due rows (at most ``limit``) are not looked at again for ``seconds``; their
    reconnect makes them due."""
    await db.execute("defer_downlinks", device_ids, seconds, limit)


async def make_due(db: Database, device_ids: list[str]) -> None:
    """The devices (re)subscribed: everything they have not acknowledged is due now."""
    await db.execute("wake_downlinks", device_ids)


async def claim_due(conn: Connection, device_ids: list[str], limit: int) -> list[DueDownlink]:
    """Due rows of ``device_ids``, oldest first, locked (SKIP LOCKED) until ``conn``'s transaction ends."""
    rows = await conn.fetch(QUERIES["open_downlinks_for_devices"], device_ids, limit)
    return [
        DueDownlink(
            id=r["id"],
            message_id=r["message_id"],
            device_id=r["device_id"],
            kind=r["kind"],
            topic=r["topic"],
            payload=r["payload"],
            counter=r["counter"],
        )
        for r in rows
    ]


async def mark_sent(conn: Connection, outbox_ids: list[str], first_retry_s: float, max_retry_s: float) -> None:
    """Handed to the device's session: due again after an exponential back-off unless acknowledged."""
    if outbox_ids:
        await conn.execute(QUERIES["mark_downlinks_sent"], outbox_ids, first_retry_s, max_retry_s)


async def postpone(conn: Connection, message_ids: list[str], seconds: float) -> None:
    """Open downlinks not to hand over for ``seconds`` (acknowledged or closed ones are left alone)."""
    if message_ids:
        await conn.execute(QUERIES["postpone_downlinks"], message_ids, seconds)
