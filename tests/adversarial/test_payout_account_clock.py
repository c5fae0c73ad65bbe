"""The payout account in force is the newest change as the database saw them, not the one whose id (the
wall clock of whichever API node made it) sorts last: a node whose clock runs behind made a newer change
sort older in the adversarial run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from qris_soundbox.core.ids import id_floor
from tests.finance.helpers import set_payout_account
from tests.onboarding import onboarded_terminal
from tests.support import RunningPlatform


async def test_a_change_made_by_a_node_whose_clock_is_behind_is_the_account_in_force(
    running: RunningPlatform,
) -> None:
    merchant_id = (await onboarded_terminal(running))["merchant_id"]
    first = await set_payout_account(running, merchant_id, account_number="1111111111")
    assert first.status_code == 200, first.text
    # Then another node, its clock an hour behind, writes the merchant's next account.
    behind = id_floor("pac", datetime.now(UTC) - timedelta(hours=1))
    await running.platform.db.pool.execute(
        "INSERT INTO merchant_payout_accounts (id, merchant_id, bank_code, account_number, account_name,"
        " created_by_type, created_by) VALUES ($1, $2, '014', '2222222222', 'WARUNG BARU', 'admin', 'node-b')",
        behind,
        merchant_id,
    )
    state = await running.http.get(f"/admin/merchants/{merchant_id}/payout-account", headers=running.admin_headers)
    assert state.status_code == 200, state.text
    assert state.json()["current"]["id"] == behind
    assert [a["id"] for a in state.json()["history"]][0] == behind
