"""Payment routes: the acquirer callback, transactions, their events, the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Request, get, post

from qris_soundbox.control_plane.auth import audit_actor
from qris_soundbox.control_plane.device_auth import device_of
from qris_soundbox.control_plane.deps import FromPath, FromQuery, JSONBody, Platform, QueryParameter
from qris_soundbox.core import audit
from qris_soundbox.core.outbox import NotificationState
from qris_soundbox.core.paging import page_limit, split_page
from qris_soundbox.core import outbox
from qris_soundbox.core.devices.registry import get_device
from qris_soundbox.core.payments import callbacks, device_requests, dynamic_qr, notifications, transactions as txns
from qris_soundbox.core.payments.errors import TransactionNotFound
from qris_soundbox.core.payments.ledger import LedgerEntry
from qris_soundbox.core.schemas import Body, Page


@post("/integrations/qris/callback", status_code=200, tags=["payments"], summary="Signed acquirer payment callback",
      opt={"public": True, "rate_limit": "callback"})
async def qris_callback(request: Request, platform: Platform) -> callbacks.CallbackResult:
    return await callbacks.receive_callback(
        platform.db,
        platform.settings,
        timestamp=request.headers.get("x-callback-timestamp"),
        signature=request.headers.get("x-callback-signature"),
        body=await request.body(),
        actor=msgspec.structs.replace(audit_actor(request), actor_type="acquirer"),
    )


@get("/admin/transactions", tags=["payments"], summary="List transactions", opt={"permission": "transaction:read"})
async def list_transactions(
    platform: Platform,
    limit: FromQuery[int | None] = None,
    cursor: FromQuery[str | None] = None,
    merchant_id: FromQuery[str | None] = None,
    terminal_id: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    from_: Annotated[datetime | None, QueryParameter(name="from")] = None,
    to: FromQuery[datetime | None] = None,
) -> Page[txns.Transaction]:
    size = page_limit(limit)
    rows = await platform.db.fetch("list_transactions", cursor, size + 1, merchant_id, terminal_id, status, from_, to)
    items, next_cursor = split_page(rows, size)
    return Page(items=[txns.transaction_from_row(r) for r in items], next_cursor=next_cursor)


class TransactionCreate(Body):
    terminal_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    amount: Annotated[int, msgspec.Meta(gt=0, le=10_000_000_000)]
    expires_in_s: Annotated[int, msgspec.Meta(ge=30, le=dynamic_qr.MAX_TTL_S)] | None = None


@post("/admin/transactions", tags=["payments"], summary="Issue a dynamic QR transaction on a terminal",
      opt={"permission": "transaction:write", "idempotent": True, "rate_limit": "admin_write"})
async def create_transaction(request: Request, platform: Platform, data: JSONBody[TransactionCreate]) -> txns.Transaction:
    async with platform.db.transaction() as conn:
        qr = await dynamic_qr.issue_dynamic_qr(platform.db, conn, platform.settings, data.terminal_id, data.amount,
                                               source="admin", ttl_s=data.expires_in_s)
        row = await conn.fetchrow(platform.db.q["transaction_by_id"], qr.transaction_id)
        await audit.record(platform.db, conn, audit_actor(request), "transaction.create", entity_type="transaction",
                           entity_id=row["id"], merchant_id=row["merchant_id"],
                           payload={"amount": data.amount, "terminal_id": data.terminal_id})
    return txns.transaction_from_row(row)


@get("/admin/transactions/{transaction_id:str}", tags=["payments"], summary="One transaction",
     opt={"permission": "transaction:read"})
async def get_transaction(platform: Platform, transaction_id: FromPath[str]) -> txns.Transaction:
    row = await platform.db.fetchrow("transaction_by_id", transaction_id)
    if row is None:
        raise TransactionNotFound(f"transaction {transaction_id} does not exist")
    transaction = txns.transaction_from_row(row)
    notification = await platform.db.fetchrow("payment_notification_for_transaction", transaction_id)
    if notification is not None:
        transaction.notification = outbox.notification_state(notification)
    return transaction


@get("/admin/transactions/{transaction_id:str}/events", tags=["payments"], summary="A transaction's state changes",
     opt={"permission": "transaction:read"})
async def transaction_events(platform: Platform, transaction_id: FromPath[str]) -> Page[txns.TransactionEvent]:
    if await platform.db.fetchrow("transaction_by_id", transaction_id) is None:
        raise TransactionNotFound(f"transaction {transaction_id} does not exist")
    rows = await platform.db.fetch("transaction_events", transaction_id)
    return Page(items=[txns.TransactionEvent(**dict(r)) for r in rows])


@post("/admin/transactions/expire-due", status_code=200, tags=["payments"],
      summary="Expire pending dynamic QRs past their expiry now", opt={"permission": "transaction:expire"})
async def expire_due(request: Request, platform: Platform) -> dict[str, object]:
    expired = await txns.expire_due(platform.db, platform.settings)
    async with platform.db.transaction() as conn:
        await audit.record(platform.db, conn, audit_actor(request), "transaction.expire_due",
                           payload={"expired": len(expired)})
    return {"expired_count": len(expired), "transaction_ids": expired}


@get("/admin/ledger-entries", tags=["payments"], summary="Ledger entries", opt={"permission": "ledger:read"})
async def list_ledger_entries(
    platform: Platform,
    limit: FromQuery[int | None] = None,
    cursor: FromQuery[str | None] = None,
    transaction_id: FromQuery[str | None] = None,
    merchant_id: FromQuery[str | None] = None,
    entry_type: FromQuery[str | None] = None,
    from_: Annotated[datetime | None, QueryParameter(name="from")] = None,
    to: FromQuery[datetime | None] = None,
) -> Page[LedgerEntry]:
    size = page_limit(limit)
    rows = await platform.db.fetch("list_ledger_entries", cursor, size + 1, transaction_id, merchant_id,
                                   entry_type, from_, to)
    items, next_cursor = split_page(rows, size)
    return Page(items=[LedgerEntry(**dict(r)) for r in items], next_cursor=next_cursor)


class DeviceDynamicQrCreate(Body):
    amount: Annotated[int, msgspec.Meta(gt=0, le=10_000_000_000)]
    request_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    device_id: str | None = None  # the legacy DEVICE_TOKEN names the device in the body


class DeviceDynamicQr(msgspec.Struct, kw_only=True):
    request_id: str | None
    transaction_id: str
    qr_payload: str
    expires_at: datetime
    amount: int
    reference: str


@post("/device/transactions/dynamic-qr", tags=["device API"], summary="A dynamic QR for the device's terminal",
      opt={"device": True, "rate_limit": "device"})
async def device_dynamic_qr(request: Request, platform: Platform,
                            data: JSONBody[DeviceDynamicQrCreate]) -> DeviceDynamicQr:
    device = device_of(request)
    async with platform.db.transaction() as conn:
        qr = await device_requests.issue_for_device(platform.db, conn, platform.settings, device.device_id, data.amount)
    return DeviceDynamicQr(request_id=data.request_id, **msgspec.structs.asdict(qr))


class DynamicQrBridgeRequest(Body):
    request_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    amount: Annotated[int, msgspec.Meta(gt=0, le=10_000_000_000)]
    device_id: str | None = None


class QueuedReply(msgspec.Struct, kw_only=True):
    request_id: str
    message_id: str
    topic: str


@post("/device/mqtt/uplink/dynamic-qr/request", status_code=202, tags=["device API"],
      summary="HTTP bridge of the MQTT dynamic-QR uplink: the reply is the MQTT downlink",
      opt={"device": True, "rate_limit": "device"})
async def device_dynamic_qr_bridge(request: Request, platform: Platform,
                                   data: JSONBody[DynamicQrBridgeRequest]) -> QueuedReply:
    device = device_of(request)
    message_id = await device_requests.answer_dynamic_qr_request(platform, device.device_id, data.request_id, data.amount)
    return QueuedReply(request_id=data.request_id, message_id=message_id,
                       topic=outbox.downlink_topic(device.device_id, "dynamic_qr_response"))


@get("/admin/devices/{device_id:str}/notifications", tags=["devices"],
     summary="The device's downlinks (payment announcements by default) and their delivery state",
     opt={"permission": "device:read"})
async def device_notifications(
    platform: Platform,
    device_id: FromPath[str],
    kind: FromQuery[Literal["payment", "dynamic_qr_response", "config", "command"] | None] = "payment",
    limit: FromQuery[int | None] = None,
    cursor: FromQuery[str | None] = None,
) -> Page[outbox.Downlink]:
    async with platform.db.transaction() as conn:
        await get_device(platform.db, conn, device_id)  # 404 for an unknown device
    size = page_limit(limit)
    rows = await platform.db.fetch("downlinks_for_device", device_id, kind, cursor, size + 1)
    items, next_cursor = split_page(rows, size)
    return Page(items=[outbox.Downlink(**dict(r)) for r in items], next_cursor=next_cursor)


@post("/admin/transactions/{transaction_id:str}/retry-notification", status_code=200, tags=["payments"],
      summary="Announce a paid transaction again on its soundbox", opt={"permission": "transaction:write"})
async def retry_notification(request: Request, platform: Platform, transaction_id: FromPath[str]) -> NotificationState:
    db = platform.db
    async with db.transaction() as conn:
        row = await txns.locked_transaction(db, conn, transaction_id)
        message_id = await notifications.retry(db, conn, platform.settings, row)
        await audit.record(db, conn, audit_actor(request), "transaction.retry_notification", entity_type="transaction",
                           entity_id=transaction_id, merchant_id=row["merchant_id"], payload={"message_id": message_id})
        state = await conn.fetchrow(db.q["payment_notification_for_transaction"], transaction_id)
    return outbox.notification_state(state)


routes = [qris_callback, device_dynamic_qr, device_dynamic_qr_bridge, device_notifications, retry_notification,
          create_transaction, list_transactions, get_transaction, transaction_events, expire_due, list_ledger_entries]
