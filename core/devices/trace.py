"""The per-device MQTT trace: every uplink and downlink, payload bounded.

``record_downlinks`` is what a publisher calls (in its own transaction, next
to its outbox rows, one statement for all it sent); the broker's uplink
dispatcher hands uplinks to the node's ``UplinkWrites``, which writes them
together (``record_rows``).
Rows older than ``DEVICE_TRACE_RETENTION_DAYS`` are removed by the job
``devices.prune_trace``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec

from qris_soundbox.core.batching import Batch
from qris_soundbox.core.db import QUERIES, Connection, Database
from qris_soundbox.core.devices.schemas import MqttMessage
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.paging import PageQuery
from qris_soundbox.core.schemas import Page

TRACE_PAYLOAD_LIMIT = 4096  # bytes of payload kept per message


class _MessageIdOnly(msgspec.Struct):
    message_id: str | None = None


def message_id_of(payload: bytes) -> str | None:
    """The application ``message_id`` of a JSON payload, if it has a string one."""
    try:
        found = msgspec.json.decode(payload, type=_MessageIdOnly).message_id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return found[:128].replace("\x00", "\ufffd") if found else None


class TraceRow(NamedTuple):
    """One row of the trace, as stored: payload bounded, the message id read from it."""

    device_id: str
    direction: str
    topic: str
    qos: int | None
    message_id: str | None
    payload: str
    payload_bytes: int
    truncated: bool


def trace_row(
    direction: str, device_id: str, topic: str, payload: bytes, qos: int | None, message_id: str | None = None
) -> TraceRow:
    text = payload[:TRACE_PAYLOAD_LIMIT].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return TraceRow(
        device_id,
        direction,
        topic[:512],
        qos,
        message_id if message_id is not None else message_id_of(payload),
        text,
        len(payload),
        len(payload) > TRACE_PAYLOAD_LIMIT,
    )


async def record_rows(conn: Connection, batch: Batch[str, TraceRow]) -> None:
    """Trace rows written together in one statement; keys are the row ids, each with its time."""
    rows = [row for row, _ in batch.values()]
    await conn.execute(
        QUERIES["insert_device_mqtt_messages"],
        list(batch),
        *(list(column) for column in zip(*rows, strict=True)),
        [at for _, at in batch.values()],
    )


def downlink_row(
    *,
    device_id: str,
    topic: str,
    payload: bytes | str | dict[str, Any] | msgspec.Struct,
    qos: int | None = 1,
    message_id: str | None = None,
) -> TraceRow:
    """One downlink's trace row. ``payload`` may be the encoded bytes or the object to be encoded."""
    if isinstance(payload, str):
        raw = payload.encode()
    elif isinstance(payload, (bytes, bytearray)):
        raw = bytes(payload)
    else:
        raw = msgspec.json.encode(payload)
    return trace_row("downlink", device_id, topic, raw, qos, message_id)


async def record_downlinks(conn: Connection, rows: list[TraceRow]) -> None:
    """A publisher's downlinks, traced in one statement next to their outbox rows."""
    if rows:
        now = datetime.now(UTC)
        await record_rows(conn, {new_id("mqm"): (row, now) for row in rows})


async def list_messages(
    conn: Connection,
    device_id: str,
    page: PageQuery,
    *,
    direction: str | None = None,
) -> Page[MqttMessage]:
    rows = await conn.fetch(QUERIES["device_mqtt_message_page"], device_id, page.cursor, page.fetch_limit, direction)
    return page.page(rows, lambda row: MqttMessage(**dict(row)))


async def prune(db: Database, retention_days: int) -> int:
    """Job ``devices.prune_trace``: drop trace rows older than the retention window."""
    async with db.transaction() as conn:
        status = await conn.execute(QUERIES["prune_device_mqtt_messages"], retention_days)
    return int(status.split()[-1])
