"""Settlement reconciliation: each batch beside the ledger rows it points at,
its adjustment rows and its payout state, plus the callbacks the payment spine
could not apply (``reconciliation_exceptions``)."""

from __future__ import annotations

from typing import Any

from qris_soundbox.core.db import QUERIES, Database, fetch_one
from qris_soundbox.core.finance.schemas import (
    BatchReconciliation,
    ReconciliationException,
    ReconciliationReport,
    UnbatchedPayables,
)
from qris_soundbox.core.finance.settlements import check_status
from qris_soundbox.core.paging import PageQuery, TimeWindow

PAYOUT_STATES = {"pending": "awaiting_payout", "paid": "paid_out", "failed": "payout_failed", "cancelled": "cancelled"}
EXCEPTIONS_SHOWN = 100


def mismatches_of(row: Any) -> list[str]:
    found = []
    if row["entry_count"] != row["ledger_entry_count"]:
        found.append("entry_count_mismatch")
    for field in ("gross", "fee", "payable"):
        if row[f"{field}_amount"] != row[f"ledger_{field}_amount"]:
            found.append(f"{field}_amount_mismatch")
    if row["adjustment_amount"] != row["adjustment_rows_amount"]:
        found.append("adjustment_amount_mismatch")
    if row["status"] in ("pending", "paid") and row["live_entry_count"] != row["ledger_entry_count"]:
        found.append("entries_not_live")
    if row["status"] in ("failed", "cancelled") and row["live_entry_count"] != 0:
        found.append("entries_not_released")
    if row["status"] == "paid" and not row["payout_reference"]:
        found.append("paid_without_reference")
    if row["duplicate_reference_count"]:
        found.append("duplicate_payout_reference")
    return found


def batch_reconciliation(row: Any) -> BatchReconciliation:
    found = mismatches_of(row)
    return BatchReconciliation(
        batch_id=row["id"],
        payout_state=PAYOUT_STATES[row["status"]],
        matched=not found,
        mismatches=found,
        **{
            name: row[name]
            for name in BatchReconciliation.__struct_fields__
            if name not in ("batch_id", "payout_state", "matched", "mismatches")
        },
    )


async def settlement_batches(
    db: Database, page: PageQuery, window: TimeWindow, *, merchant_id: str | None = None, status: str | None = None
) -> ReconciliationReport:
    check_status(status)
    from_, to = window.from_, window.to
    async with db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(
            QUERIES["reconcile_settlement_batches"], page.cursor, page.fetch_limit, merchant_id, status, from_, to
        )
        unbatched = await fetch_one(conn, "unbatched_payable_totals", merchant_id)
        counts = await conn.fetch(QUERIES["count_reconciliation_exceptions_by_kind"], merchant_id, from_, to)
        exceptions = await conn.fetch(
            QUERIES["list_reconciliation_exceptions"], merchant_id, from_, to, EXCEPTIONS_SHOWN
        )
    batches = page.page(rows, batch_reconciliation)
    return ReconciliationReport(
        items=batches.items,
        next_cursor=batches.next_cursor,
        mismatched_count=sum(1 for item in batches.items if not item.matched),
        unbatched_payables=UnbatchedPayables(entry_count=unbatched["entry_count"], amount=unbatched["amount"]),
        exception_counts={r["kind"]: r["count"] for r in counts},
        exceptions=[
            ReconciliationException(**{name: r[name] for name in ReconciliationException.__struct_fields__})
            for r in exceptions
        ],
    )
