"""``GET /admin/audit-logs``: filters and cursor paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.merchants.conftest import audit_rows, logged_in, new_merchant
from tests.support import RunningPlatform


async def test_filters_narrow_the_log(running: RunningPlatform) -> None:
    ops = await logged_in(running, "admin", "ops")
    before = datetime.now(UTC) - timedelta(seconds=1)
    created = await running.http.post(
        "/admin/merchants", json={"name": "Audit Me", "city": "Tegal"}, headers=ops.headers
    )
    merchant_id = created.json()["id"]
    await running.http.patch(f"/admin/merchants/{merchant_id}", json={"city": "Brebes"}, headers=ops.headers)

    by_entity = await audit_rows(running, entity_type="merchant", entity_id=merchant_id)
    assert [r["action"] for r in by_entity] == ["merchant.update", "merchant.create"]  # newest first
    by_actor = await audit_rows(running, actor_id=ops.user_id)
    assert {r["action"] for r in by_actor} == {"admin.login.success", "merchant.create", "merchant.update"}
    by_action = await audit_rows(running, action="merchant.update", actor_id=ops.user_id)
    assert len(by_action) == 1 and by_action[0]["actor_role"] == "ops"
    in_window = await audit_rows(running, entity_id=merchant_id, **{"from": before.isoformat()})
    assert len(in_window) == 2
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await audit_rows(running, entity_id=merchant_id, **{"from": future}) == []
    assert len(await audit_rows(running, entity_id=merchant_id, to=future)) == 2
    assert await audit_rows(running, entity_id=merchant_id, to=before.isoformat()) == []


async def test_audit_log_pages_with_a_cursor(running: RunningPlatform) -> None:
    for _ in range(3):
        await new_merchant(running)
    seen, cursor = [], None
    while True:
        params = {"action": "merchant.create", "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await running.http.get("/admin/audit-logs", params=params, headers=running.admin_headers)).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) >= 3 and seen == sorted(seen, reverse=True) and len(set(seen)) == len(seen)


async def test_bad_filters_are_validation_errors(running: RunningPlatform) -> None:
    for params in ({"from": "yesterday"}, {"limit": 1000}, {"limit": "many"}):
        response = await running.http.get("/admin/audit-logs", params=params, headers=running.admin_headers)
        assert response.status_code in (400, 422), params
        assert response.json()["error"]["code"] == "validation_error"


async def test_audit_rows_cannot_be_changed(running: RunningPlatform) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await running.platform.db.pool.execute("UPDATE audit_logs SET action = 'x'")
