"""The signed acquirer callback through the real HTTP server and PostgreSQL (SPEC §4)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import msgspec
import pytest

from tests.onboarding import onboarded_terminal
from tests.payments.helpers import callback_body, pending_transaction, post_callback, signed_headers
from tests.support import RunningPlatform


async def ledger(running: RunningPlatform, transaction_id: str) -> dict[str, int]:
    response = await running.http.get(
        "/admin/ledger-entries", params={"transaction_id": transaction_id}, headers=running.admin_headers
    )
    assert response.status_code == 200
    return {item["entry_type"]: item["amount"] for item in response.json()["items"]}


async def count(running: RunningPlatform, sql: str, *args: object) -> int:
    return await running.platform.db.pool.fetchval(sql, *args)


async def test_static_qr_payment_creates_paid_transaction_and_ledger(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, fee_bps=70)
    response = await post_callback(running, callback_body(amount=25_000, terminal_id=ids["terminal_id"]))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "paid" and result["duplicate"] is False

    txn = (
        await running.http.get(f"/admin/transactions/{result['transaction_id']}", headers=running.admin_headers)
    ).json()
    assert txn["status"] == "paid" and txn["amount"] == 25_000 and txn["terminal_id"] == ids["terminal_id"]
    assert txn["merchant_id"] == ids["merchant_id"] and txn["paid_at"] and txn["provider_reference"]

    entries = await ledger(running, result["transaction_id"])
    # 70 bps of 25,000 = 175 exactly.
    assert entries == {"gross_income": 25_000, "platform_fee": 175, "merchant_payable": 24_825}


async def test_dynamic_qr_payment_marks_pending_transaction_paid(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    transaction_id = await pending_transaction(running, ids["terminal_id"], 15_500)
    response = await post_callback(running, callback_body(amount=15_500, transaction_id=transaction_id))
    assert response.status_code == 200, response.text
    assert response.json() == {"transaction_id": transaction_id, "status": "paid", "duplicate": False}
    entries = await ledger(running, transaction_id)
    assert entries["platform_fee"] + entries["merchant_payable"] == entries["gross_income"] == 15_500
    events = (
        await running.http.get(f"/admin/transactions/{transaction_id}/events", headers=running.admin_headers)
    ).json()
    assert [e["event_type"] for e in events["items"]] == ["created", "paid"]


async def test_replay_by_event_id_or_provider_reference_changes_nothing(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    body = callback_body(amount=10_000, terminal_id=ids["terminal_id"])
    first = (await post_callback(running, body)).json()
    again = await post_callback(running, body)
    same_rrn = await post_callback(running, {**body, "event_id": "another-event"})
    for replay in (again, same_rrn):
        assert replay.status_code == 200
        assert replay.json() == {**first, "duplicate": True}
    assert await count(running, "SELECT count(*) FROM transactions WHERE terminal_id = $1", ids["terminal_id"]) == 1
    assert (
        await count(running, "SELECT count(*) FROM ledger_entries WHERE transaction_id = $1", first["transaction_id"])
        == 3
    )


async def test_fifty_concurrent_replays_make_one_transaction_and_one_ledger_set(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    body = callback_body(amount=42_000, terminal_id=ids["terminal_id"])
    responses = await asyncio.gather(*(post_callback(running, body) for _ in range(50)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    results = [r.json() for r in responses]
    assert len({r["transaction_id"] for r in results}) == 1
    assert sum(1 for r in results if not r["duplicate"]) == 1
    assert await count(running, "SELECT count(*) FROM transactions WHERE terminal_id = $1", ids["terminal_id"]) == 1
    assert (
        await count(
            running, "SELECT count(*) FROM ledger_entries WHERE transaction_id = $1", results[0]["transaction_id"]
        )
        == 3
    )


async def _audited(running: RunningPlatform, code: str) -> int:
    return await count(
        running,
        "SELECT count(*) FROM audit_logs WHERE action = 'qris.callback.rejected' AND payload->>'code' = $1",
        code,
    )


async def test_bad_signature_is_401_audited_and_changes_nothing(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    before = await _audited(running, "invalid_signature")
    raw = msgspec.json.encode(callback_body(amount=5_000, terminal_id=ids["terminal_id"]))
    response = await running.http.post(
        "/integrations/qris/callback", content=raw, headers=signed_headers(raw, secret="not-the-secret")
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_signature"
    missing = await running.http.post(
        "/integrations/qris/callback", content=raw, headers={"Content-Type": "application/json"}
    )
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_signature"
    assert await _audited(running, "invalid_signature") == before + 2
    assert await count(running, "SELECT count(*) FROM transactions WHERE terminal_id = $1", ids["terminal_id"]) == 0


async def test_stale_timestamp_is_refused(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    response = await post_callback(
        running, callback_body(amount=5_000, terminal_id=ids["terminal_id"]), timestamp=int(time.time()) - 301
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == "stale_timestamp"
    assert await count(running, "SELECT count(*) FROM transactions WHERE terminal_id = $1", ids["terminal_id"]) == 0


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b'{"event_id": 5}', b""])
async def test_malformed_body_is_validation_error(running: RunningPlatform, raw: bytes) -> None:
    response = await running.http.post("/integrations/qris/callback", content=raw, headers=signed_headers(raw))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


async def test_both_or_neither_target_is_refused(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    body = callback_body(amount=1_000, terminal_id=ids["terminal_id"], transaction_id="txn_x")
    assert (await post_callback(running, body)).json()["error"]["code"] == "validation_error"
    neither = callback_body(amount=1_000)
    assert (await post_callback(running, neither)).json()["error"]["code"] == "validation_error"


async def test_unknown_terminal_is_refused_and_recorded(running: RunningPlatform) -> None:
    body = callback_body(amount=7_000, terminal_id="ter_does_not_exist")
    response = await post_callback(running, body)
    assert response.status_code == 422 and response.json()["error"]["code"] == "unknown_terminal"
    assert (
        await count(running, "SELECT count(*) FROM reconciliation_exceptions WHERE event_id = $1", body["event_id"])
        == 1
    )
    assert await count(running, "SELECT count(*) FROM acquirer_callbacks WHERE event_id = $1", body["event_id"]) == 0


async def test_inactive_merchant_static_payment_is_refused(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, approve=False)
    response = await post_callback(running, callback_body(amount=7_000, terminal_id=ids["terminal_id"]))
    assert response.status_code == 409 and response.json()["error"]["code"] == "merchant_not_active"


async def test_amount_mismatch_is_rejected_and_recorded_for_reconciliation(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    transaction_id = await pending_transaction(running, ids["terminal_id"], 20_000)
    body = callback_body(amount=2_000, transaction_id=transaction_id)
    response = await post_callback(running, body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "amount_mismatch" and error["details"] == {"expected": 20_000, "received": 2_000}
    row = await running.platform.db.pool.fetchrow(
        "SELECT * FROM reconciliation_exceptions WHERE event_id = $1", body["event_id"]
    )
    assert row["kind"] == "amount_mismatch" and row["transaction_id"] == transaction_id
    assert (row["expected_amount"], row["received_amount"]) == (20_000, 2_000)
    txn = (await running.http.get(f"/admin/transactions/{transaction_id}", headers=running.admin_headers)).json()
    assert txn["status"] == "pending"
    assert await ledger(running, transaction_id) == {}
    assert await _audited(running, "amount_mismatch") >= 1


async def test_second_payment_for_a_paid_qr_is_refused_and_recorded(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    transaction_id = await pending_transaction(running, ids["terminal_id"], 9_000)
    assert (await post_callback(running, callback_body(amount=9_000, transaction_id=transaction_id))).status_code == 200
    second = callback_body(amount=9_000, transaction_id=transaction_id)
    response = await post_callback(running, second)
    assert response.status_code == 409 and response.json()["error"]["code"] == "already_paid"
    assert (
        await count(
            running,
            "SELECT count(*) FROM reconciliation_exceptions WHERE kind = 'paid_twice' AND event_id = $1",
            second["event_id"],
        )
        == 1
    )
    assert await count(running, "SELECT count(*) FROM ledger_entries WHERE transaction_id = $1", transaction_id) == 3


async def test_failed_notification_for_paid_transaction_is_refused(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    transaction_id = await pending_transaction(running, ids["terminal_id"], 3_000)
    await post_callback(running, callback_body(amount=3_000, transaction_id=transaction_id))
    response = await post_callback(running, callback_body(amount=3_000, transaction_id=transaction_id, status="failed"))
    assert response.status_code == 409 and response.json()["error"]["code"] == "transaction_final"


async def test_late_payment_after_expiry_is_applied_and_marked(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    transaction_id = await pending_transaction(running, ids["terminal_id"], 12_000)
    await running.platform.db.pool.execute(
        "UPDATE transactions SET expires_at = now() - interval '1 second' WHERE id = $1", transaction_id
    )
    expired = await running.http.post("/admin/transactions/expire-due", headers=running.admin_headers)
    assert expired.status_code == 200 and transaction_id in expired.json()["transaction_ids"]

    response = await post_callback(running, callback_body(amount=12_000, transaction_id=transaction_id))
    assert response.status_code == 200 and response.json()["status"] == "paid"
    events = (
        await running.http.get(f"/admin/transactions/{transaction_id}/events", headers=running.admin_headers)
    ).json()
    assert [e["event_type"] for e in events["items"]] == ["created", "expired", "paid_after_expired"]
    assert sum((await ledger(running, transaction_id)).values()) == 24_000


async def test_ledger_rows_cannot_be_updated_or_deleted(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    result = (await post_callback(running, callback_body(amount=1_000, terminal_id=ids["terminal_id"]))).json()
    pool = running.platform.db.pool
    with pytest.raises(asyncpg.PostgresError):
        await pool.execute("UPDATE ledger_entries SET amount = 1 WHERE transaction_id = $1", result["transaction_id"])
    with pytest.raises(asyncpg.PostgresError):
        await pool.execute("DELETE FROM ledger_entries WHERE transaction_id = $1", result["transaction_id"])
    assert (
        await count(
            running,
            "SELECT sum(amount) FROM ledger_entries WHERE transaction_id = $1 AND entry_type = 'gross_income'",
            result["transaction_id"],
        )
        == 1_000
    )


async def test_admin_issued_dynamic_qr_parses_and_is_paid_by_callback(running: RunningPlatform) -> None:
    from qris_soundbox.core.qris import parse_qris

    ids = await onboarded_terminal(running, qris_ready=True)
    response = await running.http.post(
        "/admin/transactions", json={"terminal_id": ids["terminal_id"], "amount": 37_500}, headers=running.admin_headers
    )
    assert response.status_code == 201, response.text
    txn = response.json()
    parsed = parse_qris(txn["qr_payload"])
    assert parsed.point_of_initiation == "dynamic" and parsed.amount == 37_500 and parsed.nmid.startswith("ID")
    assert parsed.additional_data.bill_number == txn["reference"]
    paid = await post_callback(running, callback_body(amount=37_500, transaction_id=txn["id"]))
    assert paid.json()["status"] == "paid"


async def test_dynamic_qr_needs_merchant_nmid(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    response = await running.http.post(
        "/admin/transactions", json={"terminal_id": ids["terminal_id"], "amount": 1_000}, headers=running.admin_headers
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "merchant_qris_incomplete"


async def test_transaction_create_honours_idempotency_key(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    headers = {**running.admin_headers, "Idempotency-Key": f"txn-{ids['terminal_id']}"}
    body = {"terminal_id": ids["terminal_id"], "amount": 5_000}
    first = await running.http.post("/admin/transactions", json=body, headers=headers)
    again = await running.http.post("/admin/transactions", json=body, headers=headers)
    other = await running.http.post("/admin/transactions", json={**body, "amount": 6_000}, headers=headers)
    assert first.status_code == again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert await count(running, "SELECT count(*) FROM transactions WHERE terminal_id = $1", ids["terminal_id"]) == 1
