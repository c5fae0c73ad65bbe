"""The SNAP services a partner calls: generate, query, cancel, refund, with their idempotency."""

from __future__ import annotations

import asyncio

import msgspec

from tests.onboarding import onboarded_terminal
from tests.partners.helpers import CANCEL, GENERATE, QUERY, REFUND, register_partner
from tests.payments.helpers import callback_body, post_callback
from tests.payments.test_announcements import bound_soundbox, subscribed
from tests.support import RunningPlatform


def crc16_ccitt(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def tags(payload: str) -> dict[str, str]:
    found, at = {}, 0
    while at < len(payload):
        tag, length = payload[at : at + 2], int(payload[at + 2 : at + 4])
        found[tag] = payload[at + 4 : at + 4 + length]
        at += 4 + length
    return found


async def pay(running: RunningPlatform, transaction_id: str, amount: int) -> None:
    body = callback_body(amount, transaction_id=transaction_id) | {"paid_at": "2026-12-07T03:55:00Z"}
    answer = await post_callback(running, body)
    assert answer.status_code == 200, answer.text


async def test_generate_returns_a_valid_qris_and_the_screen_soundbox_shows_it(running: RunningPlatform) -> None:
    ids, device_id, secret = await bound_soundbox(running, "generic-screen")
    partner = await register_partner(running, [ids["merchant_id"]])
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        answer = await partner.generate(ids, "25000.00", partnerReferenceNo="POS-0001")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["responseCode"] == "2004700"
        assert body["partnerReferenceNo"] == "POS-0001"
        assert body["referenceNo"].startswith("txn_")
        qr = body["qrContent"]
        assert qr[-4:] == f"{crc16_ccitt(qr[:-4].encode()):04X}"
        assert tags(qr)["54"] == "25000"
        async with asyncio.timeout(10):
            async for message in device.messages:
                if str(message.topic).endswith("dynamic-qr/response"):
                    shown = msgspec.json.decode(message.payload)
                    break
    assert shown["transaction_id"] == body["referenceNo"]
    assert shown["qr_payload"] == qr


async def test_a_terminal_without_a_screen_still_gets_its_qr(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    partner = await register_partner(running, [ids["merchant_id"]])
    answer = await partner.generate(ids)
    assert answer.status_code == 200, answer.text
    assert answer.json()["qrContent"].startswith("000201")


async def test_query_follows_the_qr_from_pending_to_paid(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    partner = await register_partner(running, [ids["merchant_id"]])
    generated = (await partner.generate(ids, "15000.00")).json()
    pending = await partner.call(QUERY, {"originalReferenceNo": generated["referenceNo"]})
    assert pending.status_code == 200, pending.text
    assert pending.json()["responseCode"] == "2005100"
    assert pending.json()["latestTransactionStatus"] == "03"
    await pay(running, generated["referenceNo"], 15000)
    paid = (await partner.call(QUERY, {"originalPartnerReferenceNo": generated["partnerReferenceNo"]})).json()
    assert paid["latestTransactionStatus"] == "00"
    assert paid["amount"] == {"value": "15000.00", "currency": "IDR"}
    assert paid["paidTime"] == "2026-12-07T10:55:00+07:00"


async def test_cancel_stops_the_qr_and_a_late_payment_is_a_reconciliation_exception(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    partner = await register_partner(running, [ids["merchant_id"]])
    generated = (await partner.generate(ids, "12000.00")).json()
    cancelled = await partner.call(CANCEL, {"originalReferenceNo": generated["referenceNo"]})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["responseCode"] == "2007700"
    again = await partner.call(CANCEL, {"originalReferenceNo": generated["referenceNo"]})
    assert again.json()["responseCode"] == "2007700"  # cancelling twice changes nothing
    queried = (await partner.call(QUERY, {"originalReferenceNo": generated["referenceNo"]})).json()
    assert queried["latestTransactionStatus"] == "05"
    await pay(running, generated["referenceNo"], 12000)
    async with running.platform.db.transaction() as conn:
        kinds = await conn.fetch(
            "SELECT kind FROM reconciliation_exceptions WHERE transaction_id = $1", generated["referenceNo"]
        )
    assert [row["kind"] for row in kinds] == ["paid_after_cancel"]
    refused = await partner.call(CANCEL, {"originalReferenceNo": generated["referenceNo"]})
    assert refused.status_code == 404 and refused.json()["responseCode"] == "4047714"


async def test_refund_of_an_unpaid_qr_is_not_permitted(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    partner = await register_partner(running, [ids["merchant_id"]])
    generated = (await partner.generate(ids)).json()
    answer = await partner.call(
        REFUND,
        {
            "originalReferenceNo": generated["referenceNo"],
            "partnerRefundNo": "R1",
            "refundAmount": {"value": "1.00", "currency": "IDR"},
        },
    )
    assert answer.status_code == 403
    assert answer.json()["responseCode"] == "4037815"


async def test_idempotency_by_external_id_and_partner_reference(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    partner = await register_partner(running, [ids["merchant_id"]])
    body = {
        "partnerReferenceNo": "POS-IDEM",
        "amount": {"value": "30000.00", "currency": "IDR"},
        "merchantId": ids["merchant_id"],
        "terminalId": ids["terminal_id"],
    }
    first = await partner.call(GENERATE, body, external_id="EXT-1")
    assert first.status_code == 200, first.text
    replay = await partner.call(GENERATE, body, external_id="EXT-1")
    assert replay.status_code == 409 and replay.json()["responseCode"] == "4094700"
    retried = await partner.call(GENERATE, body, external_id="EXT-2")
    assert retried.json()["referenceNo"] == first.json()["referenceNo"]
    changed = await partner.call(GENERATE, body | {"amount": {"value": "31000.00", "currency": "IDR"}})
    assert changed.status_code == 409 and changed.json()["responseCode"] == "4094701"
    async with running.platform.db.transaction() as conn:
        count = await conn.fetchval("SELECT count(*) FROM partner_qrs WHERE partner_id = $1", partner.id)
    assert count == 1
