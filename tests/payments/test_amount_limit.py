"""QRIS_MAX_AMOUNT (SPEC §15): no QR above it on any path; a paid notification above it is applied and
raised as a reconciliation exception in the same statement, never lost."""

from __future__ import annotations

import msgspec

from tests.devices.helpers import first_message
from tests.onboarding import onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.payments.test_announcements import bound_soundbox, subscribed
from tests.support import RunningPlatform

LIMIT = 10_000_000


async def test_no_dynamic_qr_above_the_limit_by_admin_http_or_mqtt(running: RunningPlatform) -> None:
    ids, device_id, secret = await bound_soundbox(running, "generic-screen")
    admin = "/admin/transactions"
    at_limit = await running.http.post(
        admin, json={"terminal_id": ids["terminal_id"], "amount": LIMIT}, headers=running.admin_headers
    )
    assert at_limit.status_code == 201, at_limit.text
    above = await running.http.post(
        admin, json={"terminal_id": ids["terminal_id"], "amount": LIMIT + 1}, headers=running.admin_headers
    )
    assert above.status_code == 422 and above.json()["error"]["code"] == "amount_above_limit", above.text
    assert above.json()["error"]["details"]["max_amount"] == LIMIT

    device = {"X-Device-Id": device_id, "X-Device-Secret": secret}
    refused = await running.http.post("/device/transactions/dynamic-qr", json={"amount": LIMIT + 1}, headers=device)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "amount_above_limit", refused.text

    async with running.mqtt(device_id, secret) as client:
        await subscribed(client, device_id)
        request = msgspec.json.encode({"request_id": "big", "amount": LIMIT + 1})
        await client.publish(f"devices/{device_id}/uplink/dynamic-qr/request", request, qos=1)
        message = await first_message(client, timeout=5)
    assert message is not None
    reply = msgspec.json.decode(message.payload)
    assert reply["error"]["code"] == "amount_above_limit" and reply["request_id"] == "big"

    pending = await running.platform.db.pool.fetchval(
        "SELECT count(*) FROM transactions WHERE terminal_id = $1", ids["terminal_id"]
    )
    assert pending == 1  # only the one at the limit


async def test_a_paid_notification_above_the_limit_is_applied_and_raised(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    body = callback_body(amount=LIMIT + 5, terminal_id=ids["terminal_id"])
    applied = await post_callback(running, body)
    assert applied.status_code == 200, applied.text
    transaction_id = applied.json()["transaction_id"]
    assert (await post_callback(running, body)).json()["duplicate"] is True
    pool = running.platform.db.pool
    status = await pool.fetchval("SELECT status FROM transactions WHERE id = $1", transaction_id)
    assert status == "paid"
    rows = await pool.fetch(
        "SELECT transaction_id, expected_amount, received_amount, payload FROM reconciliation_exceptions"
        " WHERE kind = 'amount_above_limit' AND event_id = $1",
        body["event_id"],
    )
    assert [(r["transaction_id"], r["expected_amount"], r["received_amount"]) for r in rows] == [
        (transaction_id, LIMIT, LIMIT + 5)
    ]
    within = await post_callback(running, callback_body(amount=LIMIT, terminal_id=ids["terminal_id"]))
    assert within.status_code == 200
    assert await pool.fetchval("SELECT count(*) FROM reconciliation_exceptions WHERE kind = 'amount_above_limit'") == 1
