"""Refunds and settlement batches: a refund is a negative line of the merchant's next batch, before
or after its payment was settled; a merchant whose lines add up below zero is held, not paid."""

from __future__ import annotations

import pytest

from tests.finance.helpers import batch_for, create_batches, merchant_with_payments, pay
from tests.refunds.helpers import refund
from tests.support import PlatformFactory, RunningPlatform


@pytest.fixture(scope="module")
async def running(platform_factory: PlatformFactory) -> RunningPlatform:
    return await platform_factory.start(rate_limit_admin_write_max=10_000)


async def entries(running: RunningPlatform, batch_id: str) -> list[dict]:
    response = await running.http.get(f"/admin/settlement-batches/{batch_id}", headers=running.admin_headers)
    assert response.status_code == 200, response.text
    return response.json()["entries"]


async def test_a_refund_before_settlement_nets_in_the_same_batch(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [100_000, 50_000], fee_bps=70)
    assert (await refund(running, ids["transaction_ids"][0], 20_000)).status_code == 201
    batch = await batch_for(running, ids["merchant_id"])
    # Payables 99,300 + 49,650, less the refund's 20,000 (its MDR is kept: SPEC §15).
    assert batch["entry_count"] == 3
    assert batch["payable_amount"] == 99_300 + 49_650 - 20_000
    assert batch["gross_amount"] == 150_000 - 20_000 and batch["fee_amount"] == 700 + 350
    lines = sorted(e["payable_amount"] for e in await entries(running, batch["id"]))
    assert lines == [-20_000, 49_650, 99_300]


async def test_a_refund_after_settlement_is_a_negative_line_of_the_next_batch(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [100_000], fee_bps=70)
    first = await batch_for(running, ids["merchant_id"])
    assert first["payable_amount"] == 99_300
    later = await pay(running, ids["terminal_id"], 10_000)
    assert (await refund(running, ids["transaction_ids"][0], 5_000)).status_code == 201
    second = await batch_for(running, ids["merchant_id"])
    assert second["payable_amount"] == 9_930 - 5_000 and second["entry_count"] == 2
    by_transaction = {e["transaction_id"]: e for e in await entries(running, second["id"])}
    refunded = by_transaction[ids["transaction_ids"][0]]
    assert (refunded["gross_amount"], refunded["fee_amount"], refunded["payable_amount"]) == (-5_000, 0, -5_000)
    assert by_transaction[later]["payable_amount"] == 9_930
    # The first batch is untouched: what it paid, it paid.
    assert (await entries(running, first["id"]))[0]["payable_amount"] == 99_300


async def test_a_merchant_owing_more_than_it_is_owed_is_held_with_its_reason(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [10_000], fee_bps=70)
    await batch_for(running, ids["merchant_id"])
    assert (await refund(running, ids["transaction_ids"][0], 10_000)).status_code == 201
    response = await running.http.post(
        "/admin/settlement-batches", json={"merchant_id": ids["merchant_id"]}, headers=running.admin_headers
    )
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["items"] == []
    assert made["held"] == [
        {
            "merchant_id": ids["merchant_id"],
            "merchant_name": None,
            "line_count": 1,
            "payable_amount": -10_000,
            "reason": "refunds_exceed_payables",
        }
    ]
    holds = await running.http.get("/admin/settlement-holds", headers=running.admin_headers)
    assert holds.status_code == 200
    listed = {h["merchant_id"]: h for h in holds.json()["items"]}
    assert listed[ids["merchant_id"]]["payable_amount"] == -10_000
    assert listed[ids["merchant_id"]]["merchant_name"] == "Warung Test"
    # Its next payments cover the refund: then it is paid the rest.
    await pay(running, ids["terminal_id"], 20_000)
    batch = await batch_for(running, ids["merchant_id"])
    assert batch["payable_amount"] == 19_860 - 10_000
    holds = await running.http.get("/admin/settlement-holds", headers=running.admin_headers)
    assert ids["merchant_id"] not in [h["merchant_id"] for h in holds.json()["items"]]
    assert await create_batches(running, {"merchant_id": ids["merchant_id"]}) == []
