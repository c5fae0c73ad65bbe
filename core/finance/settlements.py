"""Settlement batches: building them from unbatched payables and their lifecycle.

``pending -> paid | failed | cancelled``. A batch holds ``merchant_payable``
ledger entries through ``settlement_batch_entries``; the partial unique index on
``ledger_entry_id WHERE live`` makes it impossible for one entry to sit in two
live batches. Failing or cancelling a batch releases its entries (``live =
false``): they become unbatched again and the next batch run may take them.
``reprocess`` turns a failed or cancelled batch into a NEW pending batch with
those of its entries that are still unbatched, carrying its adjustments over;
a batch is reprocessed at most once. See docs/finance.md.

Batch building for one merchant is serialised by a transaction-scoped advisory
lock, so two concurrent runs never race for the same entries: the second waits,
then sees the first's entries as batched.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

import asyncpg

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import QUERIES, Connection, Database, fetch_one
from qris_soundbox.core.finance import payout_accounts
from qris_soundbox.core.finance.calendar import batch_value_date
from qris_soundbox.core.finance.errors import (
    AdjustedPayableNegative,
    FinanceInputInvalid,
    MerchantNotFound,
    NothingToReprocess,
    PayoutAccountMissing,
    SettlementBatchNotFound,
    SettlementConflict,
    SettlementStateInvalid,
)
from qris_soundbox.core.finance.schemas import (
    BatchPreviewMerchant,
    SettlementAdjustment,
    SettlementBatch,
    SettlementBatchDetail,
    SettlementBatchEntry,
    SettlementBatchesCreated,
    SettlementBatchEvent,
    SettlementBatchPreview,
    SettlementHold,
)
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.paging import PageQuery, TimeWindow
from qris_soundbox.core.schemas import Page, from_row

log = logging.getLogger(__name__)

STATUSES = ("pending", "paid", "failed", "cancelled")


def batch_from_row(row: Any) -> SettlementBatch:
    return from_row(SettlementBatch, row)


async def append_event(
    conn: Connection,
    batch_id: str,
    event_type: str,
    actor: AuditActor,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        QUERIES["insert_settlement_batch_event"],
        new_id("sbe"),
        batch_id,
        event_type,
        from_status,
        to_status,
        actor.actor_type,
        actor.actor_id,
        payload or {},
    )


async def create_batches(
    db: Database,
    actor: AuditActor,
    *,
    t_plus_days: int,
    merchant_id: str | None = None,
    cutoff: datetime | None = None,
) -> SettlementBatchesCreated:
    """One pending batch per merchant with unbatched payables created up to ``cutoff``, paying
    ``t_plus_days`` working days after it (``SETTLEMENT_T_PLUS_DAYS``); a merchant whose lines add
    up below zero (refunds outweigh its payables) is held instead, and listed in ``held``.

    A cut-off in the future is taken as now. Each merchant gets its own short
    transaction: one merchant's failure does not hold the others' batches.
    """
    effective = await _effective_cutoff(db, merchant_id, cutoff)
    merchants = await db.fetch("merchants_with_unbatched_payables", effective, merchant_id)
    made = SettlementBatchesCreated(items=[])
    for row in merchants:
        async with db.transaction() as conn:
            batch = await build_batch_for_merchant(conn, row["merchant_id"], effective, actor, t_plus_days)
        if isinstance(batch, SettlementHold):
            made.held.append(batch)
        elif batch is not None:
            made.items.append(batch)
    return made


async def _effective_cutoff(db: Database, merchant_id: str | None, cutoff: datetime | None) -> datetime:
    """The batch run's cut-off: ``cutoff``, or now when it is absent or in the future."""
    if cutoff is not None and cutoff.tzinfo is None:
        raise FinanceInputInvalid(
            "cutoff must carry a time zone (ISO-8601 with Z or an offset)", details={"field": "cutoff"}
        )
    if merchant_id is not None and await db.fetchrow("finance_merchant", merchant_id) is None:
        raise MerchantNotFound(f"merchant {merchant_id} does not exist", details={"merchant_id": merchant_id})
    now: datetime = await db.fetchval("finance_now")
    return now if cutoff is None or cutoff > now else cutoff


async def preview_batches(
    db: Database, *, t_plus_days: int, merchant_id: str | None = None, cutoff: datetime | None = None
) -> SettlementBatchPreview:
    """What ``create_batches`` with the same arguments would make now, in a read-only transaction.

    A payment arriving between the preview and the run lands in the run (its cut-off is taken again)."""
    effective = await _effective_cutoff(db, merchant_id, cutoff)
    async with db.transaction() as conn:
        await conn.execute("SET TRANSACTION READ ONLY")
        rows = await conn.fetch(QUERIES["settlement_batch_preview"], effective, merchant_id)
        value_date = await batch_value_date(conn, effective, t_plus_days)
    items = [from_row(BatchPreviewMerchant, row) for row in rows]
    return SettlementBatchPreview(
        cutoff=effective,
        value_date=value_date,
        items=items,
        entry_count=sum(item.entry_count for item in items),
        payable_amount=sum(item.payable_amount for item in items),
        missing_payout_accounts=sum(not item.has_payout_account for item in items),
    )


async def build_batch_for_merchant(
    conn: Connection, merchant_id: str, cutoff: datetime, actor: AuditActor, t_plus_days: int
) -> SettlementBatch | SettlementHold | None:
    await conn.execute(QUERIES["lock_merchant_settlement"], merchant_id)
    entries = await conn.fetch(QUERIES["unbatched_payables_for_merchant"], merchant_id, cutoff)
    if not entries:
        return None  # a concurrent run took them while this one waited for the lock
    payable = sum(e["payable_amount"] for e in entries)
    if payable < 0:
        # Refunds (negative lines) outweigh what the merchant is owed: nothing to pay, and a batch
        # below zero would be a debit no bank file carries. The lines wait for its next payments.
        log.info("settlement held", extra={"merchant_id": merchant_id, "payable_amount": payable})
        return SettlementHold(merchant_id=merchant_id, line_count=len(entries), payable_amount=payable)
    value_date = await batch_value_date(conn, cutoff, t_plus_days)
    batch = await _insert_batch(conn, merchant_id, cutoff, value_date, entries, actor)
    await append_event(
        conn,
        batch.id,
        "created",
        actor,
        to_status="pending",
        payload={
            "entry_count": batch.entry_count,
            "payable_amount": batch.payable_amount,
            "cutoff": cutoff.isoformat(),
            "value_date": value_date.isoformat(),
        },
    )
    await audit.record(
        conn,
        actor,
        "settlement_batch.create",
        entity_type="settlement_batch",
        entity_id=batch.id,
        merchant_id=merchant_id,
        payload={"entry_count": batch.entry_count, "payable_amount": batch.payable_amount},
    )
    return batch


async def settlement_holds(db: Database) -> list[SettlementHold]:
    """Every merchant held now: its unbatched lines add up below zero."""
    return [from_row(SettlementHold, row) for row in await db.fetch("settlement_holds")]


async def _insert_batch(
    conn: Connection,
    merchant_id: str,
    cutoff: datetime,
    value_date: date,
    entries: list[asyncpg.Record],
    actor: AuditActor,
    *,
    adjustment_amount: int = 0,
    reprocessed_from: str | None = None,
) -> SettlementBatch:
    gross = sum(e["gross_amount"] for e in entries)
    fee = sum(e["fee_amount"] for e in entries)
    payable = sum(e["payable_amount"] for e in entries)
    batch_id = new_id("stb")
    try:
        row = await conn.fetchrow(
            QUERIES["insert_settlement_batch"],
            batch_id,
            merchant_id,
            cutoff,
            len(entries),
            gross,
            fee,
            payable,
            adjustment_amount,
            actor.actor_id,
            reprocessed_from,
            value_date,
        )
        await conn.execute(
            QUERIES["insert_settlement_batch_entries"],
            batch_id,
            merchant_id,
            [e["ledger_entry_id"] for e in entries],
            [e["transaction_id"] for e in entries],
            [e["gross_amount"] for e in entries],
            [e["fee_amount"] for e in entries],
            [e["payable_amount"] for e in entries],
        )
    except asyncpg.UniqueViolationError:
        # The one-live-batch index caught a race the merchant lock should have prevented.
        raise SettlementConflict(
            "a payable entry is already in another live batch; retry", details={"merchant_id": merchant_id}
        ) from None
    return batch_from_row(row)


async def locked_batch(conn: Connection, batch_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(QUERIES["settlement_batch_for_update"], batch_id)
    if row is None:
        raise SettlementBatchNotFound(f"settlement batch {batch_id} does not exist", details={"batch_id": batch_id})
    return row


def require_status(batch: asyncpg.Record, allowed: tuple[str, ...], action: str) -> None:
    if batch["status"] not in allowed:
        raise SettlementStateInvalid(
            f"cannot {action} a {batch['status']} batch (allowed from: {', '.join(allowed)})",
            details={"batch_id": batch["id"], "status": batch["status"], "allowed_from": list(allowed)},
        )


def require_payout_account(batch: asyncpg.Record) -> None:
    """A batch pays the account it was created with; without one there is nowhere to pay."""
    if batch["payout_account_id"] is None:
        merchant_id = batch["merchant_id"]
        raise PayoutAccountMissing(
            f"batch {batch['id']} has no payout account: merchant {merchant_id} had none when the batch was "
            f"created. Set it (PUT /admin/merchants/{merchant_id}/payout-account) after cancelling this batch, "
            "then build a new one",
            details={"batch_id": batch["id"], "merchant_id": merchant_id},
        )


def clean_text(value: str, field: str, max_length: int = 500) -> str:
    value = value.strip()
    if not value or len(value) > max_length:
        raise FinanceInputInvalid(f"{field} must be 1 to {max_length} characters", details={"field": field})
    return value


async def mark_paid(
    conn: Connection,
    batch_id: str,
    actor: AuditActor,
    *,
    payout_reference: str,
    note: str | None = None,
) -> SettlementBatch:
    reference = clean_text(payout_reference, "payout_reference", 128)
    note = clean_text(note, "note") if note is not None else None
    current = await locked_batch(conn, batch_id)
    require_status(current, ("pending",), "mark paid")
    require_payout_account(current)
    row = await fetch_one(conn, "mark_settlement_batch_paid", batch_id, reference, note)
    await append_event(
        conn,
        batch_id,
        "paid",
        actor,
        from_status="pending",
        to_status="paid",
        payload={
            "payout_reference": reference,
            "note": note,
            "adjusted_payable_amount": row["adjusted_payable_amount"],
        },
    )
    await audit.record(
        conn,
        actor,
        "settlement_batch.mark_paid",
        entity_type="settlement_batch",
        entity_id=batch_id,
        merchant_id=row["merchant_id"],
        payload={"payout_reference": reference, "amount": row["adjusted_payable_amount"]},
    )
    return batch_from_row(row)


async def mark_failed(conn: Connection, batch_id: str, actor: AuditActor, *, reason: str) -> SettlementBatch:
    return await _release(conn, batch_id, actor, reason=reason, to_status="failed")


async def cancel(conn: Connection, batch_id: str, actor: AuditActor, *, reason: str) -> SettlementBatch:
    return await _release(conn, batch_id, actor, reason=reason, to_status="cancelled")


async def _release(
    conn: Connection, batch_id: str, actor: AuditActor, *, reason: str, to_status: str
) -> SettlementBatch:
    reason = clean_text(reason, "reason")
    current = await locked_batch(conn, batch_id)
    verb = "mark failed" if to_status == "failed" else "cancel"
    require_status(current, ("pending",), verb)
    query = "mark_settlement_batch_failed" if to_status == "failed" else "mark_settlement_batch_cancelled"
    row = await fetch_one(conn, query, batch_id, reason)
    released = await conn.execute(QUERIES["release_settlement_batch_entries"], batch_id)
    released_count = int(released.split()[-1])
    await append_event(
        conn,
        batch_id,
        to_status,
        actor,
        from_status="pending",
        to_status=to_status,
        payload={"reason": reason, "released_entries": released_count},
    )
    await audit.record(
        conn,
        actor,
        f"settlement_batch.{'mark_failed' if to_status == 'failed' else 'cancel'}",
        entity_type="settlement_batch",
        entity_id=batch_id,
        merchant_id=row["merchant_id"],
        payload={"reason": reason, "released_entries": released_count},
    )
    return batch_from_row(row)


async def reprocess(conn: Connection, batch_id: str, actor: AuditActor, *, t_plus_days: int) -> SettlementBatch:
    """A failed or cancelled batch → a NEW pending batch with its still-unbatched
    entries and copies of its adjustments. Answers the new batch. It keeps the old
    cutoff, but its value date counts from now: the old one may have passed unpaid."""
    current = await locked_batch(conn, batch_id)
    require_status(current, ("failed", "cancelled"), "reprocess")
    if current["reprocessed_into_batch_id"] is not None:
        raise SettlementStateInvalid(
            f"batch {batch_id} was already reprocessed into {current['reprocessed_into_batch_id']}",
            details={"batch_id": batch_id, "reprocessed_into_batch_id": current["reprocessed_into_batch_id"]},
        )
    merchant_id = current["merchant_id"]
    await conn.execute(QUERIES["lock_merchant_settlement"], merchant_id)
    entries = await conn.fetch(QUERIES["reprocessable_entries"], batch_id)
    if not entries:
        raise NothingToReprocess(
            f"every entry of batch {batch_id} is already in another live batch; nothing to reprocess",
            details={"batch_id": batch_id},
        )
    adjustments = await conn.fetch(QUERIES["settlement_batch_adjustments"], batch_id)
    adjustment_total = sum(a["amount"] for a in adjustments)
    payable = sum(e["payable_amount"] for e in entries)
    if payable + adjustment_total < 0:
        raise AdjustedPayableNegative(
            f"the reprocessed batch would pay {payable + adjustment_total} after its adjustments",
            details={"payable_amount": payable, "adjustment_amount": adjustment_total},
        )
    now: datetime = await conn.fetchval(QUERIES["finance_now"])
    new_batch = await _insert_batch(
        conn,
        merchant_id,
        current["cutoff"],
        await batch_value_date(conn, now, t_plus_days),
        entries,
        actor,
        adjustment_amount=adjustment_total,
        reprocessed_from=batch_id,
    )
    for adjustment in adjustments:
        await conn.execute(
            QUERIES["insert_settlement_adjustment"],
            new_id("sba"),
            new_batch.id,
            merchant_id,
            adjustment["adjustment_type"],
            adjustment["amount"],
            adjustment["reason"],
            adjustment["id"],
            actor.actor_type,
            actor.actor_id,
        )
    await conn.execute(QUERIES["set_settlement_batch_reprocessed_into"], batch_id, new_batch.id)
    await append_event(
        conn,
        batch_id,
        "reprocessed",
        actor,
        from_status=current["status"],
        to_status=current["status"],
        payload={"new_batch_id": new_batch.id},
    )
    await append_event(
        conn,
        new_batch.id,
        "created",
        actor,
        to_status="pending",
        payload={
            "reprocessed_from_batch_id": batch_id,
            "entry_count": new_batch.entry_count,
            "skipped_entries": current["entry_count"] - new_batch.entry_count,
            "carried_adjustments": len(adjustments),
        },
    )
    await audit.record(
        conn,
        actor,
        "settlement_batch.reprocess",
        entity_type="settlement_batch",
        entity_id=batch_id,
        merchant_id=merchant_id,
        payload={
            "new_batch_id": new_batch.id,
            "entry_count": new_batch.entry_count,
            "adjusted_payable_amount": new_batch.adjusted_payable_amount,
        },
    )
    return new_batch


async def update_reference(
    conn: Connection, batch_id: str, actor: AuditActor, *, payout_reference: str
) -> SettlementBatch:
    """Record or correct the bank's payout reference of a pending or paid batch."""
    reference = clean_text(payout_reference, "payout_reference", 128)
    current = await locked_batch(conn, batch_id)
    require_status(current, ("pending", "paid"), "change the payout reference of")
    row = await fetch_one(conn, "update_settlement_batch_reference", batch_id, reference)
    payload = {"old": current["payout_reference"], "new": reference}
    await append_event(
        conn,
        batch_id,
        "reference_updated",
        actor,
        from_status=current["status"],
        to_status=current["status"],
        payload=payload,
    )
    await audit.record(
        conn,
        actor,
        "settlement_batch.update_reference",
        entity_type="settlement_batch",
        entity_id=batch_id,
        merchant_id=row["merchant_id"],
        payload=payload,
    )
    return batch_from_row(row)


async def batch_detail(
    db: Database, batch_id: str, *, merchant_id: str | None = None, full_account: bool = False
) -> SettlementBatchDetail:
    """One batch with its entries, adjustments, history and the payout account it pays (its number
    masked unless ``full_account``); ``merchant_id`` scopes it (another merchant's batch is simply
    not found)."""
    async with db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        row = await conn.fetchrow(QUERIES["settlement_batch_by_id"], batch_id)
        if row is None or (merchant_id is not None and row["merchant_id"] != merchant_id):
            raise SettlementBatchNotFound(f"settlement batch {batch_id} does not exist", details={"batch_id": batch_id})
        entries = await conn.fetch(QUERIES["settlement_batch_entries"], batch_id)
        adjustments = await conn.fetch(QUERIES["settlement_batch_adjustments"], batch_id)
        events = await conn.fetch(QUERIES["settlement_batch_events"], batch_id)
        account = await payout_accounts.batch_account(conn, row["payout_account_id"], full=full_account)
    batch = batch_from_row(row)
    return SettlementBatchDetail(
        **{name: getattr(batch, name) for name in SettlementBatch.__struct_fields__},
        entries=[from_row(SettlementBatchEntry, e) for e in entries],
        adjustments=[from_row(SettlementAdjustment, a) for a in adjustments],
        events=[from_row(SettlementBatchEvent, e) for e in events],
        payout_account=account,
    )


async def scoped_batch(db: Database, batch_id: str, *, merchant_id: str | None = None) -> SettlementBatch:
    row = await db.fetchrow("settlement_batch_by_id", batch_id)
    if row is None or (merchant_id is not None and row["merchant_id"] != merchant_id):
        raise SettlementBatchNotFound(f"settlement batch {batch_id} does not exist", details={"batch_id": batch_id})
    return batch_from_row(row)


def check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise FinanceInputInvalid(f"status must be one of {', '.join(STATUSES)}", details={"field": "status"})


async def list_batches(
    db: Database, page: PageQuery, window: TimeWindow, *, merchant_id: str | None = None, status: str | None = None
) -> Page[SettlementBatch]:
    check_status(status)
    rows = await db.fetch(
        "list_settlement_batches", page.cursor, page.fetch_limit, merchant_id, status, window.from_, window.to
    )
    return page.page(rows, batch_from_row)
