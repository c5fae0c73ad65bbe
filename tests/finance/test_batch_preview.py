"""``POST /admin/settlement-batches/preview``: what a batch run would make now (payables per merchant,
missing payout accounts, the value date), writing nothing; the run that follows makes exactly that."""

from __future__ import annotations

from tests.finance.helpers import create_batches, merchant_with_payments, pay
from tests.onboarding import onboarded_terminal
from tests.support import RunningPlatform


async def written(running: RunningPlatform) -> tuple[int, int, int]:
    return await running.platform.db.pool.fetchrow(
        "SELECT (SELECT count(*) FROM settlement_batches), (SELECT count(*) FROM settlement_batch_entries),"
        " (SELECT count(*) FROM audit_logs)"
    )  # type: ignore[return-value]


async def preview(running: RunningPlatform, body: dict) -> dict:
    response = await running.http.post("/admin/settlement-batches/preview", json=body, headers=running.admin_headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_preview_shows_what_the_run_then_makes_and_writes_nothing(running: RunningPlatform) -> None:
    paid = await merchant_with_payments(running, [25_000, 10_000])
    unpaid = await onboarded_terminal(running, merchant_name="Warung Tanpa Rekening")
    await pay(running, unpaid["terminal_id"], 8_000)
    before = await written(running)

    one = await preview(running, {"merchant_id": unpaid["merchant_id"]})
    assert [(m["merchant_name"], m["entry_count"], m["has_payout_account"]) for m in one["items"]] == [
        ("Warung Tanpa Rekening", 1, False)
    ]
    assert one["missing_payout_accounts"] == 1
    everyone = await preview(running, {})
    mine = {m["merchant_id"]: m for m in everyone["items"]}
    assert mine[paid["merchant_id"]]["entry_count"] == 2 and mine[paid["merchant_id"]]["has_payout_account"]
    assert mine[paid["merchant_id"]]["gross_amount"] == 35_000
    assert everyone["payable_amount"] == sum(m["payable_amount"] for m in everyone["items"])
    assert await written(running) == before  # no batch, no entry, no audit row

    made = {b["merchant_id"]: b for b in await create_batches(running, {"merchant_id": paid["merchant_id"]})}
    batch = made[paid["merchant_id"]]
    assert batch["payable_amount"] == mine[paid["merchant_id"]]["payable_amount"]
    assert batch["entry_count"] == 2 and batch["value_date"] == everyone["value_date"]
    # Those payables are batched now: the next preview leaves the merchant out.
    assert paid["merchant_id"] not in {m["merchant_id"] for m in (await preview(running, {}))["items"]}


async def test_the_preview_refuses_what_the_run_refuses(running: RunningPlatform) -> None:
    unknown = await running.http.post(
        "/admin/settlement-batches/preview",
        json={"merchant_id": "mer_01M98HKHF45QJ9T4ME6ZNZTXT2"},
        headers=running.admin_headers,
    )
    assert unknown.status_code == 404, unknown.text
    naive = await running.http.post(
        "/admin/settlement-batches/preview", json={"cutoff": "2026-12-01T00:00:00"}, headers=running.admin_headers
    )
    assert naive.status_code == 400 and naive.json()["error"]["details"] == {"field": "cutoff"}
