"""Refunds: ``pending_approval -> pending | rejected``, ``pending -> succeeded | failed``.

Every rule that decides money is in the database (sql/migrations/170): the
amount left, the payment's state, the four-eyes approval, the ledger rows and the
payment's ``partially_refunded`` / ``refunded`` status, each one statement under
the payment's row lock. This module prepares their input (ids, the audit entry,
the settings) and turns their SQLSTATEs into the domain's errors.

A refund of a merchant whose acquirer speaks SNAP stays ``pending`` until that
acquirer answers its ``qr-mpm-refund`` (``carry_out_through_acquirer``); any
other refund is carried out by the platform in the statement after the request,
in the same transaction (the acquirer's older formats have no refund call: the
operator returns the money through the acquirer's own channel, docs/finance.md).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor, AuditEntry
from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import QUERIES, Connection, Database, fetch_one
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.outbox import NewDownlink
from qris_soundbox.core.paging import PageQuery
from qris_soundbox.core.payments import notifications
from qris_soundbox.core.payments.errors import TransactionNotFound
from qris_soundbox.core.refunds.errors import (
    RefundAmountInvalid,
    RefundExceedsRemaining,
    RefundInputInvalid,
    RefundNotFound,
    RefundSelfApproval,
    RefundStateInvalid,
    TransactionNotRefundable,
)
from qris_soundbox.core.refunds.schemas import Refund
from qris_soundbox.core.schemas import Page, from_row

log = logging.getLogger(__name__)

STATUSES = ("pending_approval", "pending", "succeeded", "failed", "rejected")
MAX_REASON_LENGTH = 500
# SQLSTATEs of sql/migrations/170's refund functions.
AMOUNT_INVALID, NOT_REFUNDABLE, EXCEEDS_REMAINING, STATE_INVALID, SELF_APPROVAL = (
    "QR001",
    "QR002",
    "QR003",
    "QR004",
    "QR005",
)


class RefundRequest(msgspec.Struct, kw_only=True, frozen=True):
    """The input of ``refund_request``."""

    id: str
    event_id: str
    transaction_id: str
    amount: int
    reason: str
    source: str  # admin | partner
    requested_by: str
    approval_above: int | None
    partner_id: str | None = None
    partner_refund_no: str | None = None
    acquirer_code: str | None = None
    audit: AuditEntry | None = None


class RefundDecision(msgspec.Struct, kw_only=True, frozen=True):
    """The input of ``refund_decide``."""

    refund_id: str
    event_id: str
    decision: str  # approve | reject
    decided_by: str
    note: str | None
    audit: AuditEntry


class RefundOutcome(msgspec.Struct, kw_only=True, frozen=True):
    """The input of ``refund_complete``."""

    refund_id: str
    event_id: str
    outcome: str  # succeeded | failed
    source: str
    returns_mdr: bool
    ledger_ids: list[str]
    failure_reason: str | None = None
    acquirer_refund_no: str | None = None
    downlink: NewDownlink | None = None  # the soundbox's announcement of a success


def refund_from_row(row: Any) -> Refund:
    return from_row(Refund, row)


def clean_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_LENGTH or not reason.isprintable():
        raise RefundInputInvalid(
            f"reason must be 1 to {MAX_REASON_LENGTH} printable characters", details={"field": "reason"}
        )
    return reason


def _refusal(exc: asyncpg.PostgresError, ids: dict[str, str]) -> Exception:
    """The domain error of a refund function's refusal; the exception itself when it is none."""
    detail = str(getattr(exc, "detail", "") or "")
    match exc.sqlstate:
        case "QR001":
            return RefundAmountInvalid("amount must be a positive whole number of rupiah", details={"field": "amount"})
        case "QR002":
            return TransactionNotRefundable(
                f"only a paid payment can be refunded; this one is {detail}", details={**ids, "status": detail}
            )
        case "QR003":
            return RefundExceedsRemaining(
                f"the refund is above what is left to refund ({detail} rupiah)",
                details={**ids, "remaining": int(detail)},
            )
        case "QR004":
            return RefundStateInvalid(f"the refund is {detail}", details={**ids, "status": detail})
        case "QR005":
            return RefundSelfApproval("a refund must be approved by someone other than who asked for it", details=ids)
        case "P0002":  # no_data_found
            if "refund_id" in ids:
                return RefundNotFound(f"refund {ids['refund_id']} does not exist", details=ids)
            return TransactionNotFound(f"transaction {ids['transaction_id']} does not exist", details=ids)
    return exc


async def _run(conn: Connection, name: str, argument: msgspec.Struct, ids: dict[str, str]) -> asyncpg.Record:
    try:
        return await fetch_one(conn, name, argument)
    except asyncpg.PostgresError as exc:
        raise _refusal(exc, ids) from None


async def request_refund(
    conn: Connection,
    settings: Settings,
    actor: AuditActor,
    transaction_id: str,
    *,
    amount: int,
    reason: str,
    source: str = "admin",
    partner_id: str | None = None,
    partner_refund_no: str | None = None,
) -> Refund:
    """Ask for a refund of ``amount`` of a paid payment; carried out at once unless it waits for a
    second person (above ``REFUND_APPROVAL_ABOVE``; operators only) or for the merchant's SNAP
    acquirer. The caller owns the transaction."""
    if amount <= 0:
        raise RefundAmountInvalid("amount must be a positive whole number of rupiah", details={"field": "amount"})
    reason = clean_reason(reason)
    acquirer = await conn.fetchrow(QUERIES["refund_acquirer"], transaction_id)
    refund_id = new_id("rfd")
    request = RefundRequest(
        id=refund_id,
        event_id=new_id("tev"),
        transaction_id=transaction_id,
        amount=amount,
        reason=reason,
        source=source,
        requested_by=actor.actor_id or actor.actor_type,
        # A partner's POS acts on its contract; the four-eyes rule is the operators' (docs/finance.md).
        approval_above=settings.refund_approval_above if source == "admin" else None,
        partner_id=partner_id,
        partner_refund_no=partner_refund_no,
        acquirer_code=acquirer["code"] if acquirer is not None else None,
        audit=audit.entry(
            actor,
            "refund.request",
            entity_type="refund",
            payload={"transaction_id": transaction_id, "amount": amount, "reason": reason},
        ),
    )
    row = await _run(conn, "refund_request", request, {"transaction_id": transaction_id})
    if row["status"] == "pending" and row["acquirer_code"] is None:
        row = await complete(conn, settings, refund_id, "succeeded", source=source)
    return await get_refund(conn, row["id"])


async def decide(
    conn: Connection, settings: Settings, actor: AuditActor, refund_id: str, *, approve: bool, note: str | None
) -> Refund:
    """A second person's approval (then carried out as ``request_refund`` would) or rejection."""
    if note is not None:
        note = clean_reason(note)
    decision = RefundDecision(
        refund_id=refund_id,
        event_id=new_id("tev"),
        decision="approve" if approve else "reject",
        decided_by=actor.actor_id or actor.actor_type,
        note=note,
        audit=audit.entry(
            actor, "refund.approve" if approve else "refund.reject", entity_type="refund", payload={"note": note}
        ),
    )
    row = await _run(conn, "refund_decide", decision, {"refund_id": refund_id})
    if row["status"] == "pending" and row["acquirer_code"] is None:
        await complete(conn, settings, refund_id, "succeeded", source="admin")
    return await get_refund(conn, refund_id)


async def complete(
    conn: Connection,
    settings: Settings,
    refund_id: str,
    outcome: str,
    *,
    source: str,
    failure_reason: str | None = None,
    acquirer_refund_no: str | None = None,
) -> asyncpg.Record:
    """A pending refund's outcome: on success its ledger rows, the payment's new status and, where the
    terminal's soundbox can say it, the refund's announcement."""
    downlink = None
    if outcome == "succeeded":
        refund = await conn.fetchrow(QUERIES["refund_by_id"], refund_id)
        context = (
            await conn.fetchrow(QUERIES["terminal_payment_context"], None, refund["transaction_id"])
            if refund is not None
            else None
        )
        soundbox = notifications.soundbox_of(context)
        # A vendor dialect renders every payment downlink as a payment (docs/dialects.md): it has no
        # form for a refund, so only a device on the platform's own wire hears one.
        if refund is not None and soundbox is not None and context is not None and context["dialect"] == "native":
            downlink = notifications.refund_downlink(
                settings,
                soundbox,
                transaction_id=refund["transaction_id"],
                refund_id=refund_id,
                amount=refund["amount"],
                refunded_at=datetime.now(UTC),
            )
    return await _run(
        conn,
        "refund_complete",
        RefundOutcome(
            refund_id=refund_id,
            event_id=new_id("tev"),
            outcome=outcome,
            source=source,
            returns_mdr=settings.finance_refund_returns_mdr,
            ledger_ids=[new_id("led") for _ in range(3)] if outcome == "succeeded" else [],
            failure_reason=failure_reason,
            acquirer_refund_no=acquirer_refund_no,
            downlink=downlink,
        ),
        {"refund_id": refund_id},
    )


async def get_refund(conn: Connection, refund_id: str) -> Refund:
    row = await conn.fetchrow(QUERIES["refund_by_id"], refund_id)
    if row is None:
        raise RefundNotFound(f"refund {refund_id} does not exist", details={"refund_id": refund_id})
    return refund_from_row(row)


async def list_refunds(
    db: Database,
    page: PageQuery,
    *,
    transaction_id: str | None = None,
    status: str | None = None,
    merchant_id: str | None = None,
) -> Page[Refund]:
    if status is not None and status not in STATUSES:
        raise RefundInputInvalid(
            f"status must be one of {', '.join(STATUSES)}", details={"field": "status", "allowed": list(STATUSES)}
        )
    rows = await db.fetch("list_refunds", page.cursor, page.fetch_limit, transaction_id, status, merchant_id)
    return page.page(rows, refund_from_row)
