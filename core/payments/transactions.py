"""Transactions and their state machine: ``pending -> paid | expired | failed``.

``paid`` is final. A ``paid`` notification for an expired or failed dynamic QR
is still applied (the customer's money moved; the merchant must get it) and is
recorded as ``paid_after_expired`` / ``paid_after_failed`` — see docs/payments.md.
Every change appends a transaction event; becoming paid writes the ledger and
queues the soundbox announcement in the same database transaction.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import QUERIES, Connection, Database, fetch_one
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.payments import ledger, notifications
from qris_soundbox.core.payments.errors import (
    MerchantNotActive,
    TerminalNotFound,
    TransactionFinal,
    TransactionNotFound,
)
from qris_soundbox.core.payments.schemas import Transaction

STATUSES = ("pending", "paid", "expired", "failed")


def transaction_from_row(row: asyncpg.Record) -> Transaction:
    return msgspec.convert(dict(row), Transaction)


def new_reference() -> str:
    # QRIS tag 62.01 (bill number) allows 25 characters; 20 hex chars is plenty unique.
    return secrets.token_hex(10).upper()


async def payable_terminal(conn: Connection, terminal_id: str) -> asyncpg.Record:
    """The terminal and its merchant, refused unless both can take payments."""
    terminal = await conn.fetchrow(QUERIES["terminal_for_payment"], terminal_id)
    if terminal is None:
        raise TerminalNotFound(f"terminal {terminal_id} does not exist", details={"terminal_id": terminal_id})
    if terminal["terminal_status"] != "active":
        raise TerminalNotFound(f"terminal {terminal_id} is not active", details={"terminal_id": terminal_id})
    if terminal["merchant_status"] != "active":
        raise MerchantNotActive(
            f"merchant {terminal['merchant_id']} is {terminal['merchant_status']}; only active merchants take payments",
            details={"merchant_id": terminal["merchant_id"], "status": terminal["merchant_status"]},
        )
    return terminal


async def append_event(
    conn: Connection,
    transaction_id: str,
    event_type: str,
    *,
    source: str,
    from_status: str | None = None,
    to_status: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        QUERIES["insert_transaction_event"],
        new_id("tev"),
        transaction_id,
        event_type,
        from_status,
        to_status,
        source,
        payload or {},
    )


async def create_transaction(
    conn: Connection,
    settings: Settings,
    terminal: asyncpg.Record,
    *,
    kind: str,
    amount: int,
    source: str,
    device_id: str | None = None,
    qr_payload: str | None = None,
    reference: str | None = None,
    expires_at: datetime | None = None,
) -> asyncpg.Record:
    """A new ``pending`` transaction on a terminal that ``payable_terminal`` accepted."""
    fee_bps = terminal["merchant_fee_bps"]
    if fee_bps is None:
        fee_bps = settings.finance_platform_fee_bps
    row = await fetch_one(
        conn,
        "insert_transaction",
        new_id("txn"),
        terminal["merchant_id"],
        terminal["outlet_id"],
        terminal["id"],
        device_id,
        kind,
        "pending",
        amount,
        reference or new_reference(),
        qr_payload,
        fee_bps,
        expires_at,
    )
    await append_event(
        conn, row["id"], "created", source=source, to_status="pending", payload={"amount": amount, "kind": kind}
    )
    return row


async def locked_transaction(conn: Connection, transaction_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(QUERIES["transaction_for_update"], transaction_id)
    if row is None:
        raise TransactionNotFound(
            f"transaction {transaction_id} does not exist", details={"transaction_id": transaction_id}
        )
    return row


async def transition(
    conn: Connection,
    settings: Settings,
    current: asyncpg.Record,
    to_status: str,
    *,
    source: str,
    paid_at: datetime | None = None,
    provider_reference: str | None = None,
    reason: str | None = None,
    payload: dict[str, Any] | None = None,
) -> asyncpg.Record:
    """Move a locked transaction to ``to_status``; ``paid`` also writes the ledger
    and queues the soundbox announcement."""
    from_status = current["status"]
    if from_status == "paid":
        raise TransactionFinal(
            f"transaction {current['id']} is paid, which is final",
            details={"transaction_id": current["id"], "status": from_status},
        )
    if to_status == from_status:
        return current
    if from_status != "pending" and to_status != "paid":
        raise TransactionFinal(
            f"transaction {current['id']} is already {from_status}",
            details={"transaction_id": current["id"], "status": from_status},
        )
    updated = await fetch_one(
        conn,
        "settle_transaction_status",
        current["id"],
        to_status,
        paid_at if to_status == "paid" else None,
        provider_reference,
        reason if to_status != "paid" else None,
    )
    event_type = to_status if from_status == "pending" else f"paid_after_{from_status}"
    await append_event(
        conn,
        current["id"],
        event_type,
        source=source,
        from_status=from_status,
        to_status=to_status,
        payload=(payload or {}) | ({"reason": reason} if reason else {}),
    )
    if to_status == "paid":
        await ledger.record_paid_transaction(conn, updated)
        await notifications.announce_payment(conn, settings, updated)
    return updated


async def sweep_due(conn: Connection, settings: Settings) -> list[str]:
    """Pending dynamic QRs past their expiry become expired (at most ``DYNAMIC_QR_EXPIRY_SWEEP_LIMIT``)."""
    due = await conn.fetch(QUERIES["due_pending_transactions"], settings.dynamic_qr_expiry_sweep_limit)
    for row in due:
        await transition(conn, settings, row, "expired", source="sweep", reason="qr_expired")
    return [row["id"] for row in due]


async def expire_due(db: Database, settings: Settings) -> list[str]:
    """Job ``payments.expire_due``: one sweep in its own transaction."""
    async with db.transaction() as conn:
        return await sweep_due(conn, settings)
