"""Settlement adjustments: signed rows that change a pending batch's adjusted payable.

Types and their sign (docs/finance.md): ``bank_fee`` and ``chargeback`` take
money off (negative), ``bonus`` adds (positive), ``correction`` either way.
The adjusted payable (``payable_amount + adjustment_amount``) never goes below
zero: the database refuses it too.
"""

from __future__ import annotations

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import QUERIES, Connection, Database, fetch_one
from qris_soundbox.core.finance.errors import AdjustedPayableNegative, FinanceInputInvalid
from qris_soundbox.core.finance.schemas import SettlementAdjustment, SettlementAdjustmentCreated
from qris_soundbox.core.finance.settlements import (
    append_event,
    batch_from_row,
    clean_text,
    locked_batch,
    require_status,
)
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.paging import PageQuery, TimeWindow
from qris_soundbox.core.schemas import Page, from_row

# type -> required sign: -1 negative, +1 positive, 0 either
ADJUSTMENT_TYPES: dict[str, int] = {"bank_fee": -1, "chargeback": -1, "bonus": 1, "correction": 0}


def check_adjustment(adjustment_type: str, amount: int, max_amount: int) -> None:
    """``max_amount``: FINANCE_MAX_ADJUSTMENT, at most AMOUNT_CEILING (which the database holds)."""
    if adjustment_type not in ADJUSTMENT_TYPES:
        raise FinanceInputInvalid(
            f"adjustment_type must be one of {', '.join(ADJUSTMENT_TYPES)}", details={"field": "adjustment_type"}
        )
    if amount == 0 or abs(amount) > max_amount:
        raise FinanceInputInvalid(
            f"amount must be a non-zero whole number of rupiah within ±{max_amount} (FINANCE_MAX_ADJUSTMENT); "
            "a bigger correction is several adjustments",
            details={"field": "amount", "max_amount": max_amount},
        )
    sign = ADJUSTMENT_TYPES[adjustment_type]
    if sign * amount < 0:
        raise FinanceInputInvalid(
            f"a {adjustment_type} adjustment must be {'negative' if sign < 0 else 'positive'}",
            details={"field": "amount", "adjustment_type": adjustment_type},
        )


def check_filter_type(adjustment_type: str | None) -> None:
    if adjustment_type is not None and adjustment_type not in ADJUSTMENT_TYPES:
        raise FinanceInputInvalid(
            f"adjustment_type must be one of {', '.join(ADJUSTMENT_TYPES)}", details={"field": "adjustment_type"}
        )


async def add_adjustment(
    conn: Connection,
    batch_id: str,
    actor: AuditActor,
    *,
    adjustment_type: str,
    amount: int,
    reason: str,
    max_amount: int,
) -> SettlementAdjustmentCreated:
    check_adjustment(adjustment_type, amount, max_amount)
    reason = clean_text(reason, "reason")
    current = await locked_batch(conn, batch_id)
    require_status(current, ("pending",), "adjust")
    if current["adjusted_payable_amount"] + amount < 0:
        raise AdjustedPayableNegative(
            f"this adjustment would take the adjusted payable to {current['adjusted_payable_amount'] + amount}; "
            "it may not go below zero",
            details={"adjusted_payable_amount": current["adjusted_payable_amount"], "amount": amount},
        )
    row = await fetch_one(
        conn,
        "insert_settlement_adjustment",
        new_id("sba"),
        batch_id,
        current["merchant_id"],
        adjustment_type,
        amount,
        reason,
        None,
        actor.actor_type,
        actor.actor_id,
    )
    batch = batch_from_row(await conn.fetchrow(QUERIES["add_settlement_batch_adjustment_amount"], batch_id, amount))
    payload = {
        "adjustment_id": row["id"],
        "adjustment_type": adjustment_type,
        "amount": amount,
        "reason": reason,
        "adjusted_payable_amount": batch.adjusted_payable_amount,
    }
    await append_event(conn, batch_id, "adjusted", actor, from_status="pending", to_status="pending", payload=payload)
    await audit.record(
        conn,
        actor,
        "settlement_batch.adjust",
        entity_type="settlement_batch",
        entity_id=batch_id,
        merchant_id=current["merchant_id"],
        payload=payload,
    )
    data = {**dict(row), "batch_status": batch.status}
    return SettlementAdjustmentCreated(
        **{name: data[name] for name in SettlementAdjustment.__struct_fields__}, batch=batch
    )


async def list_adjustments(
    db: Database,
    page: PageQuery,
    window: TimeWindow,
    *,
    merchant_id: str | None = None,
    adjustment_type: str | None = None,
) -> Page[SettlementAdjustment]:
    check_filter_type(adjustment_type)
    rows = await db.fetch(
        "list_settlement_adjustments",
        page.cursor,
        page.fetch_limit,
        merchant_id,
        adjustment_type,
        window.from_,
        window.to,
    )
    return page.page(rows, lambda row: from_row(SettlementAdjustment, row))
