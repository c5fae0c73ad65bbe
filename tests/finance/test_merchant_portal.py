"""The merchant portal is scoped to the token's merchant.

Merchant login (POST /merchant/login) is built on another branch; until it is
merged, merchant principals are stood in by patching the control plane's token
lookup, so these tests prove the scoping of the routes, not the login.
"""

from __future__ import annotations

import pytest

from qris_soundbox.core.auth import Principal
from tests.finance.helpers import batch_for, bearer, merchant_with_payments, parse_csv, principals
from tests.support import RunningPlatform


def merchant_tokens(a: str, b: str) -> dict[str, Principal]:
    return {
        "owner-a": Principal(kind="merchant", id="usr_owner_a", role="owner", merchant_id=a),
        "viewer-a": Principal(kind="merchant", id="usr_viewer_a", role="viewer", merchant_id=a),
        "owner-b": Principal(kind="merchant", id="usr_owner_b", role="owner", merchant_id=b),
    }


async def test_merchants_see_only_their_own_settlements(running: RunningPlatform,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    a = await merchant_with_payments(running, [40_000, 10_000])
    b = await merchant_with_payments(running, [99_000])
    batch_a = await batch_for(running, a["merchant_id"])
    batch_b = await batch_for(running, b["merchant_id"])
    await running.http.post(f"/admin/settlement-batches/{batch_a['id']}/adjustments",
                            json={"adjustment_type": "bank_fee", "amount": -1_000, "reason": "fee"},
                            headers=running.admin_headers)

    with principals(monkeypatch, merchant_tokens(a["merchant_id"], b["merchant_id"])):
        listed = await running.http.get("/merchant/settlement-batches", headers=bearer("owner-a"))
        assert listed.status_code == 200
        assert [x["id"] for x in listed.json()["items"]] == [batch_a["id"]]

        mine = await running.http.get(f"/merchant/settlement-batches/{batch_a['id']}", headers=bearer("viewer-a"))
        assert mine.status_code == 200 and len(mine.json()["entries"]) == 2
        assert mine.json()["adjustments"][0]["amount"] == -1_000

        for token, batch_id in (("owner-a", batch_b["id"]), ("owner-b", batch_a["id"])):
            for suffix in ("", "/export.csv"):
                other = await running.http.get(f"/merchant/settlement-batches/{batch_id}{suffix}",
                                               headers=bearer(token))
                assert other.status_code == 404, (token, suffix, other.text)

        summary = (await running.http.get("/merchant/settlement-summary", headers=bearer("owner-a"))).json()
        assert summary["pending_payout_amount"] == batch_a["payable_amount"] - 1_000
        assert summary["settlement_adjustment_amount"] == -1_000
        assert [x["id"] for x in summary["latest_batches"]] == [batch_a["id"]]
        assert "platform_fee_total" not in summary

        csv_text = await running.http.get(f"/merchant/settlement-batches/{batch_a['id']}/export.csv",
                                          headers=bearer("owner-a"))
        assert csv_text.status_code == 200
        summary_row = [r for r in parse_csv(csv_text.text) if r["row_type"] == "summary"][0]
        assert int(summary_row["adjusted_payable_amount"]) == batch_a["payable_amount"] - 1_000
        bank = await running.http.get(f"/merchant/settlement-batches/{batch_a['id']}/export.csv",
                                      params={"format": "bank_generic"}, headers=bearer("owner-a"))
        assert int(parse_csv(bank.text)[0]["amount"]) == batch_a["payable_amount"] - 1_000

        # A merchant viewer reads but does not export; no merchant token reaches the admin routes.
        assert (await running.http.get(f"/merchant/settlement-batches/{batch_a['id']}/export.csv",
                                       headers=bearer("viewer-a"))).status_code == 403
        admin_route = await running.http.get("/admin/settlement-batches", headers=bearer("owner-a"))
        assert admin_route.status_code == 403
        # And an admin token is not a merchant.
        assert (await running.http.get("/merchant/settlement-batches",
                                       headers=running.admin_headers)).status_code == 403
