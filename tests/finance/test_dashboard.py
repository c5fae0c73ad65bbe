"""Reconciliation, the finance dashboard and the observability summary.

This module's database starts empty, so totals can be checked exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime

from qris_soundbox.core.finance.dashboard import business_day
from tests.devices.helpers import eventually, provisioned_device
from tests.finance.helpers import admin_logins, batch_for, merchant_with_payments
from tests.payments.helpers import callback_body, pending_transaction, post_callback
from tests.support import RunningPlatform


async def get(running: RunningPlatform, path: str, **params: str) -> dict:
    response = await running.http.get(path, params=params, headers=running.admin_headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_dashboard_totals_follow_the_batches(running: RunningPlatform) -> None:
    empty = await get(running, "/admin/dashboard/summary")
    assert empty["pending_payout_amount"] == 0 and empty["batch_counts"] == {
        "pending": 0,
        "paid": 0,
        "failed": 0,
        "cancelled": 0,
    }

    a = await merchant_with_payments(running, [100_000, 50_000], fee_bps=50)  # fees 500 + 250
    b = await merchant_with_payments(running, [20_000], fee_bps=50)  # fee 100
    c = await merchant_with_payments(running, [7_000], fee_bps=50)  # fee 35, left unbatched
    batch_a = await batch_for(running, a["merchant_id"])
    batch_b = await batch_for(running, b["merchant_id"])
    await running.http.post(
        f"/admin/settlement-batches/{batch_a['id']}/adjustments",
        json={"adjustment_type": "bank_fee", "amount": -2_500, "reason": "fee"},
        headers=running.admin_headers,
    )
    await running.http.post(
        f"/admin/settlement-batches/{batch_a['id']}/mark-paid",
        json={"payout_reference": "BCA-1"},
        headers=running.admin_headers,
    )
    await running.http.post(
        f"/admin/settlement-batches/{batch_b['id']}/adjustments",
        json={"adjustment_type": "bonus", "amount": 1_000, "reason": "promo"},
        headers=running.admin_headers,
    )

    summary = await get(running, "/admin/dashboard/summary")
    assert summary["platform_fee_total"] == 500 + 250 + 100 + 35
    assert summary["paid_payout_amount"] == 149_250
    assert summary["settlement_adjusted_paid_amount"] == 149_250 - 2_500
    assert summary["pending_payout_amount"] == 19_900 + 1_000
    assert summary["settlement_adjustment_amount"] == -2_500 + 1_000
    assert summary["unbatched_payable_amount"] == 6_965 and summary["unbatched_payable_count"] == 1
    assert summary["batch_counts"] == {"pending": 1, "paid": 1, "failed": 0, "cancelled": 0}
    assert [x["id"] for x in summary["latest_batches"]] == [batch_b["id"], batch_a["id"]]
    today = summary["today"]
    assert today["timezone"] == "Asia/Jakarta" and today["date"] == business_day()[0]
    assert today["transaction_count"] == 4 and today["paid_count"] == 4
    assert today["paid_volume"] == 177_000
    assert c["merchant_id"]


def test_business_day_is_jakarta() -> None:
    # 18:30 UTC on 1 May is already 2 May 01:30 in Jakarta (UTC+7).
    date, start, end = business_day(datetime(2026, 5, 1, 18, 30, tzinfo=UTC))
    assert date == "2026-05-02"
    assert start == datetime(2026, 5, 1, 17, 0, tzinfo=UTC) and end == datetime(2026, 5, 2, 17, 0, tzinfo=UTC)


async def test_reconciliation_matches_batches_and_lists_callback_exceptions(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [30_000, 12_345])
    batch = await batch_for(running, ids["merchant_id"])
    await running.http.post(
        f"/admin/settlement-batches/{batch['id']}/adjustments",
        json={"adjustment_type": "correction", "amount": -345, "reason": "rounding"},
        headers=running.admin_headers,
    )
    # An amount-mismatch callback for this merchant's dynamic QR is recorded for reconciliation.
    txn = await pending_transaction(running, ids["terminal_id"], 10_000)
    mismatch = await post_callback(running, callback_body(amount=9_999, transaction_id=txn))
    assert mismatch.status_code == 422

    report = await get(running, "/admin/reconciliation/settlement-batches", merchant_id=ids["merchant_id"])
    (item,) = report["items"]
    assert item["batch_id"] == batch["id"] and item["matched"] is True and item["mismatches"] == []
    assert item["payout_state"] == "awaiting_payout"
    assert item["ledger_payable_amount"] == item["payable_amount"] == batch["payable_amount"]
    assert item["ledger_gross_amount"] == 42_345 and item["ledger_entry_count"] == 2
    assert item["adjustment_rows_amount"] == item["adjustment_amount"] == -345
    assert report["exception_counts"] == {"amount_mismatch": 1}
    (exception,) = report["exceptions"]
    assert exception["kind"] == "amount_mismatch" and exception["transaction_id"] == txn
    assert exception["expected_amount"] == 10_000 and exception["received_amount"] == 9_999

    await running.http.post(
        f"/admin/settlement-batches/{batch['id']}/mark-failed",
        json={"reason": "bounced"},
        headers=running.admin_headers,
    )
    failed = (await get(running, "/admin/reconciliation/settlement-batches", merchant_id=ids["merchant_id"]))["items"][
        0
    ]
    assert failed["payout_state"] == "payout_failed" and failed["matched"] is True
    assert failed["live_entry_count"] == 0
    assert (await get(running, "/admin/reconciliation/settlement-batches", merchant_id=ids["merchant_id"]))[
        "unbatched_payables"
    ]["entry_count"] == 2


async def test_reconciliation_flags_a_duplicate_payout_reference(running: RunningPlatform) -> None:
    first = await merchant_with_payments(running, [5_000])
    second = await merchant_with_payments(running, [6_000])
    for ids in (first, second):
        batch = await batch_for(running, ids["merchant_id"])
        await running.http.post(
            f"/admin/settlement-batches/{batch['id']}/mark-paid",
            json={"payout_reference": "SAME-REF"},
            headers=running.admin_headers,
        )
    report = await get(running, "/admin/reconciliation/settlement-batches", merchant_id=second["merchant_id"])
    assert report["items"][0]["mismatches"] == ["duplicate_payout_reference"]
    assert report["mismatched_count"] == 1


async def test_observability_summary(running: RunningPlatform) -> None:
    await merchant_with_payments(running, [2_000])
    summary = await get(running, "/admin/observability/summary")
    assert set(summary) >= {"outbox", "export_jobs", "runtime_instances", "transactions_last_hour"}
    assert summary["transactions_last_hour"]["paid"]["count"] >= 1
    assert any(instance["alive"] and "worker" in instance["roles"] for instance in summary["runtime_instances"])
    assert summary["export_jobs"]["worker"]["this_process"]["interval_ms"] == 5_000


async def test_observability_summary_counts_the_devices_online(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)

    async def counted() -> bool:
        summary = await get(running, "/admin/observability/summary")
        online = await running.platform.db.pool.fetchval("SELECT count(*) FROM devices WHERE online")
        return summary["devices_online"] == online and online >= 1

    async with running.mqtt(device_id, secret):
        assert await eventually(counted, timeout=10)


async def test_read_roles(running: RunningPlatform) -> None:
    viewer = (await admin_logins(running, "viewer"))["viewer"]
    for path in (
        "/admin/dashboard/summary",
        "/admin/observability/summary",
        "/admin/reconciliation/settlement-batches",
        "/admin/settlement-adjustments",
    ):
        response = await running.http.get(path, headers=viewer.headers)
        assert response.status_code == 200, (path, response.text)
    export = await running.http.post("/admin/exports/settlement-adjustments", json={}, headers=viewer.headers)
    assert export.status_code == 403
