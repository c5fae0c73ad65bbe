"""Who may change how a merchant's money is split (the adversarial run: ops set ``fee_bps`` 10000 and the
next Rp100,000 payment booked ``platform_fee 100000``, ``merchant_payable 0``)."""

from __future__ import annotations

from tests.merchants.conftest import logged_in
from tests.support import RunningPlatform


async def test_ops_cannot_set_a_fee_override_but_admin_can(running: RunningPlatform) -> None:
    ops = await logged_in(running, "admin", "ops")
    created = await running.http.post(
        "/admin/merchants", json={"name": "Toko Fee", "city": "Solo"}, headers=ops.headers
    )
    assert created.status_code == 201
    merchant_id = created.json()["id"]

    refused = await running.http.patch(f"/admin/merchants/{merchant_id}", json={"fee_bps": 10000}, headers=ops.headers)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["details"] == {"permission": "merchant:fees"}
    cleared = await running.http.patch(f"/admin/merchants/{merchant_id}", json={"fee_bps": None}, headers=ops.headers)
    assert cleared.status_code == 403
    on_create = await running.http.post(
        "/admin/merchants", json={"name": "Toko Fee 2", "city": "Solo", "fee_bps": 10000}, headers=ops.headers
    )
    assert on_create.status_code == 403
    fee = await running.platform.db.pool.fetchval("SELECT fee_bps FROM merchants WHERE id = $1", merchant_id)
    assert fee is None
    # Other details stay ops' to change.
    renamed = await running.http.patch(f"/admin/merchants/{merchant_id}", json={"city": "Klaten"}, headers=ops.headers)
    assert renamed.status_code == 200

    allowed = await running.http.patch(
        f"/admin/merchants/{merchant_id}", json={"fee_bps": 50}, headers=running.admin_headers
    )
    assert allowed.status_code == 200 and allowed.json()["fee_bps"] == 50
