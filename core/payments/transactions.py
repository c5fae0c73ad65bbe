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

from qris_soundbox.core.audit import AuditEntry
from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import QUERIES, Connection, Database, fetch_one
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.outbox import NewDownlink
from qris_soundbox.core.payments.errors import (
    MerchantNotActive,
    TerminalNotFound,
    TransactionFinal,
    TransactionNotFound,
)
from qris_soundbox.core.payments.schemas import Transaction

STATUSES = ("pending", "paid", "expired", "failed", "partially_refunded", "refunded")
# The ledger rows of a paid transaction (SPEC §6), written by ``payment_transition`` (sql/migrations/080):
# gross = the amount paid; the fee at the transaction's rate, half up; payable = gross - fee.
LEDGER_ENTRY_TYPES = ("gross_income", "platform_fee", "merchant_payable")
# SQLSTATE of a status change ``payment_transition`` refuses.
TRANSITION_REFUSED = "QS001"


def transaction_from_row(row: asyncpg.Record) -> Transaction:
    return msgspec.convert(dict(row), Transaction)


def new_reference() -> str:
    # QRIS tag 62.01 (bill number) allows 25 characters; 20 hex chars is plenty unique.
    return secrets.token_hex(10).upper()


async def payable_terminal(conn: Connection, terminal_id: str) -> asyncpg.Record:
    """The terminal and its merchant, refused unless both can take payments."""
    return check_payable(terminal_id, await conn.fetchrow(QUERIES["terminal_for_payment"], terminal_id))


def check_payable(terminal_id: str, terminal: asyncpg.Record | None) -> asyncpg.Record:
    """A ``terminal_for_payment``-shaped row, refused unless terminal and merchant can take payments."""
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


class NewTransaction(msgspec.Struct, kw_only=True, frozen=True):
    """A pending transaction about to be written with its ``created`` event (``payment_create``, sql/migrations/080)."""

    id: str
    event_id: str
    merchant_id: str
    outlet_id: str
    terminal_id: str
    device_id: str | None
    kind: str
    amount: int
    reference: str
    qr_payload: str | None
    expires_at: datetime | None
    source: str
    audit: AuditEntry | None = None  # written with it (its entity and merchant filled in by the database)


class TransitionRequest(msgspec.Struct, kw_only=True, frozen=True):
    """A status change for ``payment_transition`` (sql/migrations/080): its event, and for ``paid``
    the ledger rows' ids and the announcement to queue (None: no soundbox is bound)."""

    to_status: str
    source: str
    event_id: str
    paid_at: datetime | None = None
    provider_reference: str | None = None
    reason: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    ledger_ids: list[str] = msgspec.field(default_factory=list)
    downlink: NewDownlink | None = None


def new_transaction(
    terminal: asyncpg.Record,
    *,
    kind: str,
    amount: int,
    source: str,
    device_id: str | None = None,
    qr_payload: str | None = None,
    reference: str | None = None,
    expires_at: datetime | None = None,
    audit: AuditEntry | None = None,
) -> NewTransaction:
    """A new ``pending`` transaction on a terminal (a ``payable_terminal`` or ``terminal_payment_context`` row).
    Its fee is the database's: the merchant's MDR schedule (sql/migrations/110)."""
    return NewTransaction(
        id=new_id("txn"),
        event_id=new_id("tev"),
        merchant_id=terminal["merchant_id"],
        outlet_id=terminal["outlet_id"],
        terminal_id=terminal["id"],
        device_id=device_id,
        kind=kind,
        amount=amount,
        reference=reference or new_reference(),
        qr_payload=qr_payload,
        expires_at=expires_at,
        source=source,
        audit=audit,
    )


async def create_transaction(conn: Connection, transaction: NewTransaction) -> asyncpg.Record:
    """Write a new ``pending`` transaction and its ``created`` event: one round trip."""
    return await fetch_one(conn, "payment_create", transaction)


def transition_request(
    to_status: str,
    *,
    source: str,
    paid_at: datetime | None = None,
    provider_reference: str | None = None,
    reason: str | None = None,
    payload: dict[str, Any] | None = None,
    downlink: NewDownlink | None = None,
) -> TransitionRequest:
    return TransitionRequest(
        to_status=to_status,
        source=source,
        event_id=new_id("tev"),
        paid_at=paid_at,
        provider_reference=provider_reference,
        reason=reason,
        payload=payload or {},
        ledger_ids=[new_id("led") for _ in LEDGER_ENTRY_TYPES] if to_status == "paid" else [],
        downlink=downlink,
    )


async def locked_transaction(conn: Connection, transaction_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(QUERIES["transaction_for_update"], transaction_id)
    if row is None:
        raise TransactionNotFound(
            f"transaction {transaction_id} does not exist", details={"transaction_id": transaction_id}
        )
    return row


def transaction_final(transaction_id: str, status: str) -> TransactionFinal:
    """The refusal of ``payment_transition_refusal`` (sql/migrations/080) as the API says it."""
    text = "is paid, which is final" if status == "paid" else f"is already {status}"
    return TransactionFinal(
        f"transaction {transaction_id} {text}", details={"transaction_id": transaction_id, "status": status}
    )


async def transition(conn: Connection, transaction_id: str, request: TransitionRequest) -> asyncpg.Record:
    """Move a transaction to ``request.to_status`` with its event; ``paid`` also writes the
    ledger and queues ``request.downlink``. One round trip (``payment_transition``)."""
    try:
        return await fetch_one(conn, "payment_transition", transaction_id, request)
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == TRANSITION_REFUSED:
            raise transaction_final(transaction_id, str(getattr(exc, "detail", ""))) from None
        raise


async def sweep_due(conn: Connection, settings: Settings) -> list[str]:
    """Pending dynamic QRs past their expiry become expired (at most ``DYNAMIC_QR_EXPIRY_SWEEP_LIMIT``)."""
    due = await conn.fetch(QUERIES["due_pending_transactions"], settings.dynamic_qr_expiry_sweep_limit)
    for row in due:
        await transition(conn, row["id"], transition_request("expired", source="sweep", reason="qr_expired"))
    return [row["id"] for row in due]


async def expire_due(db: Database, settings: Settings) -> list[str]:
    """Job ``payments.expire_due``: one sweep in its own transaction."""
    async with db.transaction() as conn:
        return await sweep_due(conn, settings)
