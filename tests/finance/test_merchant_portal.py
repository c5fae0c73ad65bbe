"""The merchant portal is scoped to the token's merchant (real merchant logins)."""

from __future__ import annotations

from tests.actors import logged_in
from tests.finance.helpers import batch_for, merchant_with_payments, parse_csv
from tests.support import RunningPlatform


async def test_merchants_see_only_their_own_settlements(running: RunningPlatform) -> None:
    a = await merchant_with_payments(running, [40_000, 10_000])
    b = await merchant_with_payments(running, [99_000])
    batch_a = await batch_for(running, a["merchant_id"])
    batch_b = await batch_for(running, b["merchant_id"])
    await running.http.post(
        f"/admin/settlement-batches/{batch_a['id']}/adjustments",
        json={"adjustment_type": "bank_fee", "amount": -1_000, "reason": "fee"},
        headers=running.admin_headers,
    )

    owner_a = await logged_in(running, "merchant", "owner", a["merchant_id"])
    viewer_a = await logged_in(running, "merchant", "viewer", a["merchant_id"])
    owner_b = await logged_in(running, "merchant", "owner", b["merchant_id"])
    tokens = {"owner-a": owner_a.headers, "viewer-a": viewer_a.headers, "owner-b": owner_b.headers}
    listed = await running.http.get("/merchant/settlement-batches", headers=tokens["owner-a"])
    assert listed.status_code == 200
    assert [x["id"] for x in listed.json()["items"]] == [batch_a["id"]]

    mine = await running.http.get(f"/merchant/settlement-batches/{batch_a['id']}", headers=tokens["viewer-a"])
    assert mine.status_code == 200 and len(mine.json()["entries"]) == 2
    assert mine.json()["adjustments"][0]["amount"] == -1_000
    # The account the batch pays, masked: merchant users never hold payout_account:read.
    number = a["payout_account"]["account_number"]
    assert mine.json()["payout_account"]["account_number"] == "******" + number[-4:]
    assert number not in mine.text

    for token, batch_id in (("owner-a", batch_b["id"]), ("owner-b", batch_a["id"])):
        for suffix in ("", "/export.csv"):
            other = await running.http.get(f"/merchant/settlement-batches/{batch_id}{suffix}", headers=tokens[token])
            assert other.status_code == 404, (token, suffix, other.text)

    summary = (await running.http.get("/merchant/settlement-summary", headers=tokens["owner-a"])).json()
    assert summary["pending_payout_amount"] == batch_a["payable_amount"] - 1_000
    assert summary["settlement_adjustment_amount"] == -1_000
    assert [x["id"] for x in summary["latest_batches"]] == [batch_a["id"]]
    assert "platform_fee_total" not in summary

    csv_text = await running.http.get(
        f"/merchant/settlement-batches/{batch_a['id']}/export.csv", headers=tokens["owner-a"]
    )
    assert csv_text.status_code == 200
    summary_row = [r for r in parse_csv(csv_text.text) if r["row_type"] == "summary"][0]
    assert int(summary_row["adjusted_payable_amount"]) == batch_a["payable_amount"] - 1_000
    bank = await running.http.get(
        f"/merchant/settlement-batches/{batch_a['id']}/export.csv",
        params={"format": "bank_generic"},
        headers=tokens["owner-a"],
    )
    # A bank file carries the full account number: not for merchant users.
    assert bank.status_code == 403, bank.text

    # A merchant viewer reads but does not export; no merchant token reaches the admin routes.
    assert (
        await running.http.get(f"/merchant/settlement-batches/{batch_a['id']}/export.csv", headers=tokens["viewer-a"])
    ).status_code == 403
    admin_route = await running.http.get("/admin/settlement-batches", headers=tokens["owner-a"])
    assert admin_route.status_code == 403
    # And an admin token is not a merchant.
    assert (await running.http.get("/merchant/settlement-batches", headers=running.admin_headers)).status_code == 403
