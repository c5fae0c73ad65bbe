"""The ledger invariant as a property: over random sequences of payments, refunds (full, partial,
too large) and settlement runs, every payment's rows balance against its gross, refunds included;
the refunds never add up past the payment; every line of the merchant sits in at most one live
batch, the batches and the unbatched lines add up to what the ledger says the merchant is owed,
and no batch pays below zero. The MDR is returned here (FINANCE_REFUND_RETURNS_MDR=true), so the
fee rows move too."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.finance.helpers import pay, payee_terminal
from tests.refunds.helpers import refund
from tests.support import PlatformFactory, RunningPlatform


@pytest.fixture(scope="module")
async def running(platform_factory: PlatformFactory) -> RunningPlatform:
    return await platform_factory.start(
        rate_limit_admin_write_max=100_000, refund_approval_above=10**12, finance_refund_returns_mdr=True
    )


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("pay"), st.sampled_from([1_000, 12_345, 500_001]) | st.integers(min_value=1, max_value=2_000_000)
        ),
        st.tuples(
            st.just("refund"), st.integers(min_value=0, max_value=7), st.integers(min_value=1, max_value=2_000_000)
        ),
        st.tuples(st.just("refund_rest"), st.integers(min_value=0, max_value=7)),
        st.tuples(st.just("settle")),
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Half of a Rp1,000 payment at 0.7% (fee 7) and then the rest: shares rounded one by one would return 8.
@example(operations=[("pay", 1_000), ("refund", 0, 500), ("refund_rest", 0), ("settle",)], fee_bps=70)
@given(operations=OPERATIONS, fee_bps=st.sampled_from([70, 33, 1, 0]))
async def test_every_payment_balances_through_refunds_and_settlements(
    running: RunningPlatform, operations: list, fee_bps: int
) -> None:
    ids = await payee_terminal(running, fee_bps=fee_bps)
    payments: list[tuple[str, int]] = []  # (transaction id, amount)
    left: dict[str, int] = {}
    for operation in operations:
        if operation[0] == "pay":
            txn_id = await pay(running, ids["terminal_id"], operation[1])
            payments.append((txn_id, operation[1]))
            left[txn_id] = operation[1]
        elif operation[0] == "settle":
            response = await running.http.post(
                "/admin/settlement-batches", json={"merchant_id": ids["merchant_id"]}, headers=running.admin_headers
            )
            assert response.status_code == 201, response.text
            assert all(b["payable_amount"] >= 0 for b in response.json()["items"])
            assert all(h["payable_amount"] < 0 for h in response.json()["held"])
        elif payments:
            txn_id, _ = payments[operation[1] % len(payments)]
            # The rest of a payment, or 1 rupiah of one fully refunded already.
            amount = (left[txn_id] or 1) if operation[0] == "refund_rest" else operation[2]
            response = await refund(running, txn_id, amount)
            if left[txn_id] == 0:
                assert response.status_code == 409 and response.json()["error"]["code"] == "transaction_not_refundable"
            elif amount > left[txn_id]:
                assert response.status_code == 409 and response.json()["error"]["code"] == "refund_exceeds_remaining"
            else:
                assert response.status_code == 201 and response.json()["status"] == "succeeded", response.text
                left[txn_id] -= amount

    pool = running.platform.db.pool
    for txn_id, amount in payments:
        rows = await pool.fetch("SELECT entry_type, amount FROM ledger_entries WHERE transaction_id = $1", txn_id)
        total = {
            kind: sum(r["amount"] for r in rows if r["entry_type"] == kind) for kind in {r["entry_type"] for r in rows}
        }
        gross = total["gross_income"] - total.get("refund_gross", 0)
        fee = total["platform_fee"] - total.get("refund_fee", 0)
        payable = total["merchant_payable"] - total.get("refund_payable", 0)
        assert gross == fee + payable and gross == left[txn_id]
        assert 0 <= fee <= total["platform_fee"]
        txn = await pool.fetchrow("SELECT status, refunded_amount FROM transactions WHERE id = $1", txn_id)
        assert txn["refunded_amount"] == amount - left[txn_id]
        expected = "paid" if left[txn_id] == amount else "refunded" if left[txn_id] == 0 else "partially_refunded"
        assert txn["status"] == expected
        if left[txn_id] == 0:
            assert fee == 0  # the whole fee came back with the whole payment

    owed = await pool.fetchval(
        "SELECT COALESCE(sum(CASE WHEN entry_type = 'merchant_payable' THEN amount ELSE -amount END), 0)::bigint"
        " FROM ledger_entries WHERE merchant_id = $1 AND entry_type IN ('merchant_payable', 'refund_payable')",
        ids["merchant_id"],
    )
    batched = await pool.fetchval(
        "SELECT COALESCE(sum(payable_amount), 0)::bigint FROM settlement_batch_entries WHERE merchant_id = $1 AND live",
        ids["merchant_id"],
    )
    unbatched = await pool.fetchval(
        "SELECT COALESCE(sum(CASE WHEN le.entry_type = 'merchant_payable' THEN le.amount ELSE -le.amount END), 0)::bigint"
        " FROM ledger_entries le WHERE le.merchant_id = $1 AND le.entry_type IN ('merchant_payable', 'refund_payable')"
        " AND NOT EXISTS (SELECT 1 FROM settlement_batch_entries e WHERE e.ledger_entry_id = le.id AND e.live)",
        ids["merchant_id"],
    )
    assert batched + unbatched == owed
    batches = await pool.fetch(
        "SELECT payable_amount FROM settlement_batches WHERE merchant_id = $1", ids["merchant_id"]
    )
    assert all(b["payable_amount"] >= 0 for b in batches)
