"""Refunds through the admin API, and the ledger read straight from the database."""

from __future__ import annotations

import uuid

from tests.support import RunningPlatform


async def refund(
    running: RunningPlatform,
    transaction_id: str,
    amount: int,
    *,
    reason: str = "customer returned the goods",
    headers: dict | None = None,
    key: str | None = None,
):
    """POST a refund; the raw response."""
    return await running.http.post(
        f"/admin/transactions/{transaction_id}/refunds",
        json={"amount": amount, "reason": reason},
        headers={**(headers or running.admin_headers), "Idempotency-Key": key or uuid.uuid4().hex},
    )


async def transaction(running: RunningPlatform, transaction_id: str) -> dict:
    response = await running.http.get(f"/admin/transactions/{transaction_id}", headers=running.admin_headers)
    assert response.status_code == 200, response.text
    return response.json()


async def ledger_rows(running: RunningPlatform, transaction_id: str) -> list[dict]:
    rows = await running.platform.db.pool.fetch(
        "SELECT entry_type, amount, refund_id FROM ledger_entries WHERE transaction_id = $1 ORDER BY id",
        transaction_id,
    )
    return [dict(r) for r in rows]


def balanced(rows: list[dict]) -> bool:
    """The ledger invariant: what is left of the gross = what is left of the fee + of the payable."""
    total = {t: sum(r["amount"] for r in rows if r["entry_type"] == t) for t in {r["entry_type"] for r in rows}}

    gross = total["gross_income"] - total.get("refund_gross", 0)
    fee = total["platform_fee"] - total.get("refund_fee", 0)
    payable = total["merchant_payable"] - total.get("refund_payable", 0)
    return gross == fee + payable


async def refund_count(running: RunningPlatform, transaction_id: str) -> int:
    return await running.platform.db.pool.fetchval(
        "SELECT count(*) FROM refunds WHERE transaction_id = $1", transaction_id
    )
