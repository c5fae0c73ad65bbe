"""An approved merchant's identity changes only with a second person (issue 23, finding 2b).

Before: ``PATCH /admin/merchants/{id} {"name": ..., "nmid": ..., "email": ...}`` by one ops user
re-badged an approved merchant at once: the QR's name, the NMID the acquirer settles against and the
bank file's notice address. Now PATCH refuses those fields on an approved merchant; the change is
proposed, the merchant keeps its approved identity (and takes payments) until a different user with
``merchant:approve`` applies it, and every step is audited.
"""

from __future__ import annotations

import asyncpg
import pytest

from tests.actors import logged_in
from tests.onboarding import new_merchant, onboarded_terminal
from tests.support import RunningPlatform

NEW_IDENTITY = {"name": "Toko Baru", "nmid": "ID1020021181745", "email": "baru@toko.test"}


async def _merchant(running: RunningPlatform, merchant_id: str) -> dict:
    answer = await running.http.get(f"/admin/merchants/{merchant_id}", headers=running.admin_headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_one_ops_user_cannot_change_an_approved_merchants_identity(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, merchant_name="Toko Lama")
    merchant_id = ids["merchant_id"]
    before = await _merchant(running, merchant_id)
    ops = await logged_in(running, "admin", "ops")
    for field, value in NEW_IDENTITY.items() | {("legal_name", "PT Lain")}:
        answer = await running.http.patch(f"/admin/merchants/{merchant_id}", json={field: value}, headers=ops.headers)
        assert answer.status_code == 409, (field, answer.text)
        assert answer.json()["error"]["code"] == "identity_change_needs_approval"
        assert answer.json()["error"]["details"] == {"fields": [field]}
    # Nor with the bootstrap admin token: the rule is the merchant's state, not the caller's role.
    admin = await running.http.patch(
        f"/admin/merchants/{merchant_id}", json={"name": "Toko Admin"}, headers=running.admin_headers
    )
    assert admin.status_code == 409
    # Other details stay one person's to change.
    moved = await running.http.patch(f"/admin/merchants/{merchant_id}", json={"city": "Klaten"}, headers=ops.headers)
    assert moved.status_code == 200, moved.text
    after = await _merchant(running, merchant_id)
    assert {k: after[k] for k in ("name", "nmid", "email", "legal_name")} == {
        k: before[k] for k in ("name", "nmid", "email", "legal_name")
    }

    # Proposed: stored, nothing applied, and ops cannot apply its own (nor hold merchant:approve).
    proposed = await running.http.post(
        f"/admin/merchants/{merchant_id}/identity-changes", json=NEW_IDENTITY, headers=ops.headers
    )
    assert proposed.status_code == 201, proposed.text
    change = proposed.json()
    assert change["status"] == "pending" and change["proposed_by_id"] == ops.user_id
    assert change["changes"]["name"] == {"from": "Toko Lama", "to": "Toko Baru"}
    assert (await _merchant(running, merchant_id))["name"] == "Toko Lama"
    approve = f"/admin/merchants/{merchant_id}/identity-changes/{change['id']}/approve"
    assert (await running.http.post(approve, headers=ops.headers)).status_code == 403
    second = await running.http.post(
        f"/admin/merchants/{merchant_id}/identity-changes", json={"name": "Toko Lain"}, headers=ops.headers
    )
    assert second.status_code == 409 and second.json()["error"]["code"] == "identity_change_pending"

    # A second person applies it.
    reviewer = await logged_in(running, "admin", "admin")
    applied = await running.http.post(approve, headers=reviewer.headers)
    assert applied.status_code == 200, applied.text
    assert applied.json()["status"] == "applied" and applied.json()["decided_by_id"] == reviewer.user_id
    now = await _merchant(running, merchant_id)
    assert {k: now[k] for k in NEW_IDENTITY} == NEW_IDENTITY and now["status"] == "active"
    again = await running.http.post(approve, headers=reviewer.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "identity_change_decided"

    async with running.platform.db.pool.acquire() as conn:
        actions = await conn.fetch(
            "SELECT action, actor_id FROM audit_logs WHERE entity_id = $1 AND action LIKE 'merchant.identity_change.%'"
            " ORDER BY id",
            merchant_id,
        )
    assert [(r["action"], r["actor_id"]) for r in actions] == [
        ("merchant.identity_change.propose", ops.user_id),
        ("merchant.identity_change.approve", reviewer.user_id),
    ]


async def test_the_proposer_cannot_apply_its_own_change_even_as_admin(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, merchant_name="Toko Sendiri")
    merchant_id = ids["merchant_id"]
    admin = await logged_in(running, "admin", "admin")
    change = (
        await running.http.post(
            f"/admin/merchants/{merchant_id}/identity-changes", json={"email": "x@y.test"}, headers=admin.headers
        )
    ).json()
    own = await running.http.post(
        f"/admin/merchants/{merchant_id}/identity-changes/{change['id']}/approve", headers=admin.headers
    )
    assert own.status_code == 403 and own.json()["error"]["code"] == "second_approver_required", own.text
    assert (await _merchant(running, merchant_id))["email"] != "x@y.test"
    # The database holds it past the service: an applied row naming its proposer is refused.
    async with running.platform.db.transaction() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE merchant_identity_changes SET status = 'applied', decided_at = now(),"
                " decided_by_type = proposed_by_type, decided_by_id = proposed_by_id WHERE id = $1",
                change["id"],
            )
    # The proposer may withdraw it, and then propose again.
    withdrawn = await running.http.post(
        f"/admin/merchants/{merchant_id}/identity-changes/{change['id']}/reject",
        json={"reason": "typo"},
        headers=admin.headers,
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "rejected", withdrawn.text
    listed = await running.http.get(f"/admin/merchants/{merchant_id}/identity-changes", headers=admin.headers)
    assert [item["status"] for item in listed.json()["items"]] == ["rejected"]


async def test_a_merchant_pending_review_is_edited_directly(running: RunningPlatform) -> None:
    # Not approved yet: the review that approves it sees the identity, so PATCH applies at once.
    merchant = await new_merchant(running)
    renamed = await running.http.patch(
        f"/admin/merchants/{merchant['id']}", json={"name": "Toko Review"}, headers=running.admin_headers
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Toko Review", renamed.text
