"""Refunds through the real admin API and PostgreSQL: full and partial, the amount left under
concurrency, bad input with nothing half-written, Idempotency-Key, the four-eyes approval."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.finance.helpers import admin_logins, merchant_with_payments, pay
from tests.payments.helpers import callback_body, pending_transaction, post_callback
from tests.refunds.helpers import balanced, ledger_rows, refund, refund_count, transaction
from tests.support import PlatformFactory, RunningPlatform

APPROVAL_ABOVE = 50_000


@pytest.fixture(scope="module")
async def running(platform_factory: PlatformFactory) -> RunningPlatform:
    return await platform_factory.start(rate_limit_admin_write_max=10_000, refund_approval_above=APPROVAL_ABOVE)


async def test_full_refund_reverses_gross_and_payable_and_keeps_the_mdr(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [40_000], fee_bps=70)
    txn_id = ids["transaction_ids"][0]
    response = await refund(running, txn_id, 40_000)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "succeeded" and body["amount"] == 40_000 and body["fee_returned"] == 0
    assert (await transaction(running, txn_id))["status"] == "refunded"
    rows = await ledger_rows(running, txn_id)
    by_type = {r["entry_type"]: r["amount"] for r in rows}
    # 0.7% of 40,000 is 280: the merchant had 39,720 and gives back all 40,000 (SPEC §15: MDR not returned).
    assert by_type == {
        "gross_income": 40_000,
        "platform_fee": 280,
        "merchant_payable": 39_720,
        "refund_gross": 40_000,
        "refund_fee": 0,
        "refund_payable": 40_000,
    }
    assert all(r["refund_id"] == body["id"] for r in rows if r["entry_type"].startswith("refund_"))
    assert balanced(rows)
    # Nothing is left to refund.
    again = await refund(running, txn_id, 1)
    assert again.status_code == 409 and again.json()["error"]["code"] == "transaction_not_refundable"


async def test_partial_refunds_add_up_to_the_payment_and_never_beyond(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [25_000], fee_bps=70)
    txn_id = ids["transaction_ids"][0]
    assert (await refund(running, txn_id, 10_000)).status_code == 201
    assert (await transaction(running, txn_id))["status"] == "partially_refunded"
    assert (await refund(running, txn_id, 5_000)).status_code == 201
    above = await refund(running, txn_id, 10_001)
    assert above.status_code == 409, above.text
    assert above.json()["error"]["code"] == "refund_exceeds_remaining"
    assert above.json()["error"]["details"]["remaining"] == 10_000
    assert await refund_count(running, txn_id) == 2  # the refused one left no row
    last = await refund(running, txn_id, 10_000)
    assert last.status_code == 201 and last.json()["status"] == "succeeded"
    txn = await transaction(running, txn_id)
    assert txn["status"] == "refunded" and txn["refunded_amount"] == 25_000
    rows = await ledger_rows(running, txn_id)
    assert sum(r["amount"] for r in rows if r["entry_type"] == "refund_gross") == 25_000
    assert balanced(rows)
    listed = await running.http.get(f"/admin/transactions/{txn_id}/refunds", headers=running.admin_headers)
    assert [r["amount"] for r in listed.json()["items"]] == [10_000, 5_000, 10_000]


async def test_twenty_concurrent_refunds_never_exceed_the_payment(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [50_000], fee_bps=70)
    txn_id = ids["transaction_ids"][0]
    answers = await asyncio.gather(*(refund(running, txn_id, 7_000) for _ in range(20)))
    statuses = sorted(a.status_code for a in answers)
    # 7 × 7,000 = 49,000 fit; the 8th would be 56,000.
    assert statuses.count(201) == 7, [a.text for a in answers]
    refused = [a.json()["error"]["code"] for a in answers if a.status_code != 201]
    assert refused == ["refund_exceeds_remaining"] * 13
    txn = await transaction(running, txn_id)
    assert txn["refunded_amount"] == 49_000 and txn["status"] == "partially_refunded"
    rows = await ledger_rows(running, txn_id)
    assert sum(r["amount"] for r in rows if r["entry_type"] == "refund_gross") == 49_000
    assert balanced(rows)


async def test_unpaid_failed_and_missing_payments_cannot_be_refunded(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [], fee_bps=70)
    pending = await pending_transaction(running, ids["terminal_id"], 10_000)
    failed = await pending_transaction(running, ids["terminal_id"], 10_000)
    answer = await post_callback(running, callback_body(amount=10_000, transaction_id=failed, status="failed"))
    assert answer.status_code == 200, answer.text
    for txn_id, status in ((pending, "pending"), (failed, "failed")):
        response = await refund(running, txn_id, 5_000)
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "transaction_not_refundable" and error["details"]["status"] == status
        assert await refund_count(running, txn_id) == 0
    missing = await refund(running, "txn_does_not_exist", 5_000)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "transaction_not_found"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount": 0, "reason": "x"}, "refund_amount_invalid"),
        ({"amount": -5_000, "reason": "x"}, "refund_amount_invalid"),
        ({"amount": 1_000, "reason": "   "}, "validation_error"),
        ({"amount": 1_000, "reason": "a\x00b"}, "validation_error"),
        ({"amount": 1.5, "reason": "x"}, "validation_error"),
        ({"amount": 1_000}, "validation_error"),
        ({"amount": 1_000, "reason": "x", "fee": 0}, "validation_error"),
        ({"amount": 2**63, "reason": "x"}, "validation_error"),
    ],
    ids=["zero", "negative", "blank-reason", "nul-in-reason", "fraction", "no-reason", "unknown-field", "huge"],
)
async def test_bad_refund_bodies_are_refused_and_write_nothing(running: RunningPlatform, body: dict, code: str) -> None:
    ids = await merchant_with_payments(running, [10_000], fee_bps=70)
    txn_id = ids["transaction_ids"][0]
    response = await running.http.post(
        f"/admin/transactions/{txn_id}/refunds",
        json=body,
        headers={**running.admin_headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert await refund_count(running, txn_id) == 0
    assert (await transaction(running, txn_id))["status"] == "paid"


async def test_one_idempotency_key_refunds_once_and_refuses_another_body(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [30_000], fee_bps=70)
    txn_id = ids["transaction_ids"][0]
    key = uuid.uuid4().hex
    first = await refund(running, txn_id, 10_000, key=key)
    replay = await refund(running, txn_id, 10_000, key=key)
    assert first.status_code == replay.status_code == 201
    assert replay.headers.get("idempotent-replayed") == "true" and replay.json()["id"] == first.json()["id"]
    other = await refund(running, txn_id, 20_000, key=key)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert await refund_count(running, txn_id) == 1


async def test_a_large_refund_waits_for_a_second_person(running: RunningPlatform) -> None:
    users = await admin_logins(running, "finance", "viewer")
    second = (await admin_logins(running, "finance"))["finance"]
    first = users["finance"]
    ids = await merchant_with_payments(running, [80_000], fee_bps=70)
    txn_id = ids["transaction_ids"][0]
    assert (await refund(running, txn_id, 1_000, headers=users["viewer"].headers)).status_code == 403
    asked = await refund(running, txn_id, APPROVAL_ABOVE + 1, headers=first.headers)
    assert asked.status_code == 201, asked.text
    pending = asked.json()
    assert pending["status"] == "pending_approval" and pending["requested_by"] == first.user_id
    assert (await transaction(running, txn_id))["status"] == "paid"
    assert [r["entry_type"] for r in await ledger_rows(running, txn_id) if r["refund_id"]] == []
    # Its amount is reserved while it waits: 80,000 - 50,001 = 29,999 left.
    over = await refund(running, txn_id, 30_000, headers=second.headers)
    assert over.status_code == 409 and over.json()["error"]["details"]["remaining"] == 29_999
    waiting = await running.http.get("/admin/refunds?status=pending_approval", headers=running.admin_headers)
    assert pending["id"] in [r["id"] for r in waiting.json()["items"]]
    path = f"/admin/refunds/{pending['id']}"
    own = await running.http.post(f"{path}/approve", json={}, headers=first.headers)
    assert own.status_code == 403 and own.json()["error"]["code"] == "refund_self_approval"
    assert (await running.http.post(f"{path}/approve", json={}, headers=users["viewer"].headers)).status_code == 403
    approved = await running.http.post(f"{path}/approve", json={"note": "checked"}, headers=second.headers)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "succeeded" and approved.json()["decided_by"] == second.user_id
    txn = await transaction(running, txn_id)
    assert txn["status"] == "partially_refunded" and txn["refunded_amount"] == APPROVAL_ABOVE + 1
    again = await running.http.post(f"{path}/approve", json={}, headers=second.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "refund_state_invalid"


async def test_a_rejected_refund_frees_its_amount(running: RunningPlatform) -> None:
    second = (await admin_logins(running, "finance"))["finance"]
    ids = await merchant_with_payments(running, [60_000], fee_bps=70)
    txn_id = ids["transaction_ids"][0]
    asked = (await refund(running, txn_id, 60_000)).json()
    assert asked["status"] == "pending_approval"
    assert (await refund(running, txn_id, 1)).status_code == 409
    rejected = await running.http.post(
        f"/admin/refunds/{asked['id']}/reject", json={"note": "not our sale"}, headers=second.headers
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert (await refund(running, txn_id, 20_000)).json()["status"] == "succeeded"
    assert (await transaction(running, txn_id))["status"] == "partially_refunded"


async def test_a_late_paid_notification_does_not_pay_a_refunded_payment_again(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [], fee_bps=70)
    txn_id = await pending_transaction(running, ids["terminal_id"], 10_000)
    body = callback_body(amount=10_000, transaction_id=txn_id)
    assert (await post_callback(running, body)).status_code == 200
    assert (await refund(running, txn_id, 10_000)).status_code == 201
    late = callback_body(amount=10_000, transaction_id=txn_id)
    response = await post_callback(running, late)
    assert response.status_code == 409, response.text
    assert (await transaction(running, txn_id))["status"] == "refunded"
    assert len([r for r in await ledger_rows(running, txn_id) if r["entry_type"] == "gross_income"]) == 1


async def test_the_mdr_share_adds_up_to_the_whole_fee(running: RunningPlatform) -> None:
    """refund_fee_share (sql/migrations/170), what FINANCE_REFUND_RETURNS_MDR gives back: partial
    refunds in any split return exactly the payment's fee in all."""
    fee, gross = 86, 12_345
    for split in ([12_345], [1, 12_344], [4_000, 4_000, 4_345], [3] * 4115):
        before, returned = 0, 0
        for part in split:
            returned += await running.platform.db.pool.fetchval(
                "SELECT refund_fee_share($1, $2, $3, $4)", fee, gross, before, part
            )
            before += part
        assert returned == fee, split


async def test_refund_rows_are_append_only(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [10_000], fee_bps=70)
    txn_id = ids["transaction_ids"][0]
    assert (await refund(running, txn_id, 10_000)).status_code == 201
    with pytest.raises(Exception, match="append-only|not allowed|forbid"):
        await running.platform.db.pool.execute(
            "UPDATE ledger_entries SET amount = 1 WHERE transaction_id = $1 AND entry_type = 'refund_gross'", txn_id
        )


__all__ = ["pay"]
