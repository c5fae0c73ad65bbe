"""Every audited payment write commits with its audit row, or neither does (core/payments/service.py).

The test makes PostgreSQL refuse the audit row of one action (a trigger this module's own
database gets), then asks for the change over HTTP: the change must not be there either.
An audit row written in a second transaction, after the change committed, fails this.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.merchants.conftest import audit_rows
from tests.onboarding import onboarded_terminal
from tests.payments.test_announcements import bound_soundbox, paid_and_acked, subscribed
from tests.support import PlatformFactory, RunningPlatform

REFUSE_AUDIT_ROWS = """
CREATE TABLE refused_audit_actions (action text PRIMARY KEY);
CREATE FUNCTION refuse_audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM refused_audit_actions WHERE action = NEW.action) THEN
        RAISE EXCEPTION 'audit row for % refused by the test', NEW.action;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_audit_row BEFORE INSERT ON audit_logs FOR EACH ROW EXECUTE FUNCTION refuse_audit_row();
"""


@pytest.fixture(scope="module")
async def running(platform_factory: PlatformFactory) -> RunningPlatform:
    # The expiry job off: only the operator's expire-due may expire the test's transaction.
    platform = await platform_factory.start(dynamic_qr_expiry_scheduler_enabled=False)
    await platform.platform.db.pool.execute(REFUSE_AUDIT_ROWS)
    return platform


@asynccontextmanager
async def audit_refused(running: RunningPlatform, action: str) -> AsyncIterator[None]:
    pool = running.platform.db.pool
    await pool.execute("INSERT INTO refused_audit_actions VALUES ($1)", action)
    try:
        yield
    finally:
        await pool.execute("DELETE FROM refused_audit_actions WHERE action = $1", action)


async def transaction(running: RunningPlatform, transaction_id: str) -> dict[str, Any]:
    response = await running.http.get(f"/admin/transactions/{transaction_id}", headers=running.admin_headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_an_issued_qr_and_its_audit_row_commit_together(running: RunningPlatform) -> None:
    terminal_id = (await onboarded_terminal(running, qris_ready=True))["terminal_id"]
    body = {"terminal_id": terminal_id, "amount": 12_000}

    async with audit_refused(running, "transaction.create"):
        refused = await running.http.post("/admin/transactions", json=body, headers=running.admin_headers)
    assert refused.status_code == 500
    listed = await running.http.get(
        "/admin/transactions", params={"terminal_id": terminal_id}, headers=running.admin_headers
    )
    assert listed.json()["items"] == []

    created = await running.http.post("/admin/transactions", json=body, headers=running.admin_headers)
    assert created.status_code == 201, created.text
    assert len(await audit_rows(running, action="transaction.create", entity_id=created.json()["id"])) == 1


async def test_expire_due_and_its_audit_row_commit_together(running: RunningPlatform) -> None:
    terminal_id = (await onboarded_terminal(running, qris_ready=True))["terminal_id"]
    created = await running.http.post(
        "/admin/transactions", json={"terminal_id": terminal_id, "amount": 7_000}, headers=running.admin_headers
    )
    transaction_id = created.json()["id"]
    # The API issues no QR that is already due: move its expiry into the past.
    await running.platform.db.pool.execute(
        "UPDATE transactions SET expires_at = now() - interval '1 second' WHERE id = $1", transaction_id
    )

    async with audit_refused(running, "transaction.expire_due"):
        refused = await running.http.post("/admin/transactions/expire-due", headers=running.admin_headers)
    assert refused.status_code == 500
    assert (await transaction(running, transaction_id))["status"] == "pending"
    assert await audit_rows(running, action="transaction.expire_due") == []

    expired = await running.http.post("/admin/transactions/expire-due", headers=running.admin_headers)
    assert expired.json() == {"expired_count": 1, "transaction_ids": [transaction_id]}
    assert (await transaction(running, transaction_id))["status"] == "expired"
    assert [row["payload"] for row in await audit_rows(running, action="transaction.expire_due")] == [{"expired": 1}]


async def test_a_retried_announcement_and_its_audit_row_commit_together(running: RunningPlatform) -> None:
    ids, device_id, secret = await bound_soundbox(running)
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        paid, announced = await paid_and_acked(running, device, device_id, ids["terminal_id"], 3_000)

    async def downlinks() -> list[str]:
        listed = await running.http.get(f"/admin/devices/{device_id}/notifications", headers=running.admin_headers)
        return [item["message_id"] for item in listed.json()["items"]]

    retry = f"/admin/transactions/{paid['transaction_id']}/retry-notification"
    async with audit_refused(running, "transaction.retry_notification"):
        refused = await running.http.post(retry, headers=running.admin_headers)
    assert refused.status_code == 500
    assert await downlinks() == [announced["message_id"]]  # no second announcement queued

    retried = await running.http.post(retry, headers=running.admin_headers)
    assert retried.status_code == 200, retried.text
    assert await downlinks() == [retried.json()["message_id"], announced["message_id"]]
    rows = await audit_rows(running, action="transaction.retry_notification", entity_id=paid["transaction_id"])
    assert [row["payload"] for row in rows] == [{"message_id": retried.json()["message_id"]}]
