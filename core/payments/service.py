"""Payments as the admin API asks for them: transactions, their events, the ledger,
a device's downlinks, and the operator's writes (issue a QR, expire due, retry an
announcement).

The routes parse, call and return. Every function takes the caller's connection
(the route owns the short transaction) and a write records its audit row on
that same connection, so a change and its audit row commit or fail together.
The acquirer callback (``callbacks``) and the device requests
(``device_requests``) have their own modules.
"""

from __future__ import annotations

import asyncpg

from qris_soundbox.core import audit, outbox
from qris_soundbox.core.acquirers.clients import AcquirerClients
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.devices.registry import get_device
from qris_soundbox.core.outbox import Downlink, NotificationState
from qris_soundbox.core.paging import PageQuery, TimeWindow
from qris_soundbox.core.payments import dynamic_qr, notifications
from qris_soundbox.core.payments import transactions as txns
from qris_soundbox.core.payments.errors import TransactionNotFound
from qris_soundbox.core.payments.schemas import LedgerEntry, Transaction, TransactionEvent
from qris_soundbox.core.payments.transactions import transaction_from_row
from qris_soundbox.core.schemas import Page


async def _transaction_row(conn: Connection, transaction_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(QUERIES["transaction_by_id"], transaction_id)
    if row is None:
        raise TransactionNotFound(f"transaction {transaction_id} does not exist")
    return row


async def _notification(conn: Connection, transaction_id: str) -> NotificationState | None:
    row = await conn.fetchrow(QUERIES["payment_notification_for_transaction"], transaction_id)
    return outbox.notification_state(row) if row is not None else None


async def create_transaction(
    conn: Connection,
    settings: Settings,
    acquirers: AcquirerClients,
    actor: AuditActor,
    *,
    terminal_id: str,
    amount: int,
    expires_in_s: int | None = None,
) -> Transaction:
    """A dynamic QR issued by an operator on a terminal: one read, then one write statement that
    also records the audit row (``payment_create``), so no explicit transaction is needed."""
    terminal = await txns.payable_terminal(conn, terminal_id)
    row = await dynamic_qr.issue_dynamic_qr(
        conn,
        settings,
        terminal,
        amount,
        acquirers=acquirers,
        source="admin",
        ttl_s=expires_in_s,
        audit=audit.entry(
            actor,
            "transaction.create",
            entity_type="transaction",
            payload={"amount": amount, "terminal_id": terminal_id},
        ),
    )
    return transaction_from_row(row)


async def list_transactions(
    conn: Connection,
    page: PageQuery,
    window: TimeWindow,
    *,
    merchant_id: str | None = None,
    terminal_id: str | None = None,
    status: str | None = None,
    search: str | None = None,
) -> Page[Transaction]:
    """``search`` is a reference or an RRN, matched whole, or an amount in rupiah."""
    amount = int(search) if search is not None and search.isascii() and search.isdigit() and len(search) <= 12 else None
    rows = await conn.fetch(
        QUERIES["list_transactions"],
        page.cursor,
        page.fetch_limit,
        merchant_id,
        terminal_id,
        status,
        window.from_,
        window.to,
        search,
        amount,
    )
    return page.page(rows, transaction_from_row)


async def get_transaction(conn: Connection, transaction_id: str) -> Transaction:
    """One transaction with the state of its soundbox announcement."""
    row = await conn.fetchrow(QUERIES["transaction_view"], transaction_id)
    if row is None:
        raise TransactionNotFound(f"transaction {transaction_id} does not exist")
    transaction = transaction_from_row(row)
    transaction.notification = await _notification(conn, transaction_id)
    return transaction


async def transaction_events(conn: Connection, transaction_id: str) -> Page[TransactionEvent]:
    await _transaction_row(conn, transaction_id)  # 404 for an unknown transaction, not an empty list
    rows = await conn.fetch(QUERIES["transaction_events"], transaction_id)
    return Page(items=[TransactionEvent(**dict(row)) for row in rows])


async def expire_due(conn: Connection, settings: Settings, actor: AuditActor) -> list[str]:
    """What the ``payments.expire_due`` job does, asked for now by an operator, and audited."""
    expired = await txns.sweep_due(conn, settings)
    await audit.record(conn, actor, "transaction.expire_due", payload={"expired": len(expired)})
    return expired


async def list_ledger_entries(
    conn: Connection,
    page: PageQuery,
    window: TimeWindow,
    *,
    transaction_id: str | None = None,
    merchant_id: str | None = None,
    entry_type: str | None = None,
) -> Page[LedgerEntry]:
    rows = await conn.fetch(
        QUERIES["list_ledger_entries"],
        page.cursor,
        page.fetch_limit,
        transaction_id,
        merchant_id,
        entry_type,
        window.from_,
        window.to,
    )
    return page.page(rows, lambda row: LedgerEntry(**dict(row)))


async def device_downlinks(conn: Connection, device_id: str, kind: str | None, page: PageQuery) -> Page[Downlink]:
    """The device's downlinks of one kind (all kinds for None) and their delivery state."""
    await get_device(conn, device_id)  # 404 for an unknown device, not an empty list
    rows = await conn.fetch(QUERIES["downlinks_for_device"], device_id, kind, page.cursor, page.fetch_limit)
    return page.page(rows, lambda row: Downlink(**dict(row)))


async def retry_notification(
    conn: Connection, settings: Settings, actor: AuditActor, transaction_id: str
) -> NotificationState:
    """Announce a paid transaction again on its soundbox (``notifications.retry``)."""
    row = await txns.locked_transaction(conn, transaction_id)
    message_id = await notifications.retry(conn, settings, row)
    await audit.record(
        conn,
        actor,
        "transaction.retry_notification",
        entity_type="transaction",
        entity_id=transaction_id,
        merchant_id=row["merchant_id"],
        payload={"message_id": message_id},
    )
    state = await _notification(conn, transaction_id)
    assert state is not None  # the retry has just queued or woken it
    return state
