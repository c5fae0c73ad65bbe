"""Payment routes: the acquirer callback, transactions, their events, the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Request, get, post

from qris_soundbox.control_plane.auth import audit_actor
from qris_soundbox.control_plane.deps import FromPath, FromQuery, JSONBody, Platform, QueryParameter
from qris_soundbox.control_plane.schemas import Base, Page
from qris_soundbox.core import audit
from qris_soundbox.core.errors import DomainError
from qris_soundbox.core.outbox import NotificationState
from qris_soundbox.core.paging import page_limit, split_page
from qris_soundbox.core.payments import callbacks, dynamic_qr, transactions as txns
from qris_soundbox.core.payments.errors import TransactionNotFound
from qris_soundbox.core.payments.ledger import LedgerEntry


@post("/integrations/qris/callback", status_code=200, tags=["payments"], summary="Signed acquirer payment callback",
      opt={"public": True, "rate_limit": "callback"})
async def qris_callback(request: Request, platform: Platform) -> callbacks.CallbackResult:
    body = await request.body()
    actor = msgspec.structs.replace(audit_actor(request), actor_type="acquirer")
    try:
        callbacks.verify_signature(
            platform.settings.integration_webhook_secret,
            request.headers.get("x-callback-timestamp"),
            request.headers.get("x-callback-signature"),
            body,
        )
        notification = callbacks.parse_notification(body)
    except DomainError as error:
        async with platform.db.transaction() as conn:
            await audit.record(platform.db, conn, actor, "qris.callback.rejected",
                               payload={"code": error.code, "reason": error.message})
        raise
    return await callbacks.handle_callback(platform.db, platform.settings, notification, actor)


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


class TransactionCreate(Base):
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
        transaction.notification = NotificationState(**{k: notification[k] for k in NotificationState.__struct_fields__})
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
    expired = await txns.expire_due(platform.db, platform.settings.dynamic_qr_expiry_sweep_limit)
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


routes = [qris_callback, create_transaction, list_transactions, get_transaction, transaction_events, expire_due, list_ledger_entries]
