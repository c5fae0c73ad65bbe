"""qr-mpm-refund (SPEC §14) through the money core: SNAP codes on every path, partnerRefundNo and
X-EXTERNAL-ID idempotency, a partner reaching only its own QRs, and the signed refunded notification."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.devices.helpers import eventually
from tests.onboarding import onboarded_terminal
from tests.partners.helpers import QUERY, REFUND, Partner, receiver, register_partner
from tests.partners.test_notifications import verifies
from tests.partners.test_services import pay
from tests.support import RunningPlatform


async def paid_qr(running: RunningPlatform, partner: Partner, ids: dict, amount: int = 20_000) -> str:
    generated = (await partner.generate(ids, f"{amount}.00")).json()
    await pay(running, generated["referenceNo"], amount)
    return generated["referenceNo"]


def refund_body(reference: str, refund_no: str, value: str) -> dict:
    return {
        "originalReferenceNo": reference,
        "partnerRefundNo": refund_no,
        "refundAmount": {"value": value, "currency": "IDR"},
        "reason": "barang dikembalikan",
    }


async def refund_rows(running: RunningPlatform, transaction_id: str) -> list[dict]:
    rows = await running.platform.db.pool.fetch(
        "SELECT id, amount, status, partner_refund_no FROM refunds WHERE transaction_id = $1 ORDER BY id",
        transaction_id,
    )
    return [dict(r) for r in rows]


async def test_partial_then_full_refund_and_the_partner_hears_each_signed(
    running: RunningPlatform, tmp_path: Path
) -> None:
    key = await running.http.get("/snap/public-key.pem")
    async with receiver(tmp_path) as sink:
        ids = await onboarded_terminal(running, qris_ready=True)
        partner = await register_partner(running, [ids["merchant_id"]], sink.url)
        reference = await paid_qr(running, partner, ids)
        first = await partner.call(REFUND, refund_body(reference, "RF-1", "5000.00"))
        assert first.status_code == 200, first.text
        answer = first.json()
        assert answer["responseCode"] == "2007800"
        assert answer["refundNo"].startswith("rfd_") and answer["partnerRefundNo"] == "RF-1"
        assert answer["refundAmount"] == {"value": "5000.00", "currency": "IDR"}
        assert answer["originalReferenceNo"] == reference and answer["refundTime"].endswith("+07:00")
        queried = (await partner.call(QUERY, {"originalReferenceNo": reference})).json()
        assert (queried["latestTransactionStatus"], queried["transactionStatusDesc"]) == ("04", "Partially Refunded")
        rest = await partner.call(REFUND, refund_body(reference, "RF-2", "15000.00"))
        assert rest.status_code == 200 and rest.json()["responseCode"] == "2007800"
        assert (await partner.call(QUERY, {"originalReferenceNo": reference})).json()["transactionStatusDesc"] == (
            "Refunded"
        )
        requests = await sink.wait_for(3)
    bodies = [json.loads(request["body"]) for request in requests]
    assert [(b["latestTransactionStatus"], b["transactionStatusDesc"]) for b in bodies] == [
        ("00", "Success"),
        ("04", "Partially Refunded"),
        ("04", "Refunded"),
    ]
    assert all(verifies(key.text, request, sink.url) for request in requests)
    assert [r["status"] for r in await refund_rows(running, reference)] == ["succeeded", "succeeded"]


async def test_partner_refund_no_is_idempotent_and_external_id_is_claimed(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    partner = await register_partner(running, [ids["merchant_id"]])
    reference = await paid_qr(running, partner, ids)
    body = refund_body(reference, "RF-IDEM", "3000.00")
    first = await partner.call(REFUND, body, external_id="EXT-RF-1")
    assert first.status_code == 200, first.text
    replayed_external_id = await partner.call(REFUND, body, external_id="EXT-RF-1")
    assert replayed_external_id.status_code == 409 and replayed_external_id.json()["responseCode"] == "4097800"
    retried = await partner.call(REFUND, body, external_id="EXT-RF-2")
    assert retried.status_code == 200 and retried.json()["refundNo"] == first.json()["refundNo"]
    other = await partner.call(REFUND, refund_body(reference, "RF-IDEM", "4000.00"))
    assert other.status_code == 409 and other.json()["responseCode"] == "4097801"
    assert len(await refund_rows(running, reference)) == 1


@pytest.mark.parametrize(
    ("value", "status", "code"),
    [
        ("20001.00", 404, "4047813"),  # above what is left
        ("0.00", 404, "4047813"),
        ("1000.50", 400, "4007801"),  # rupiah has no minor unit
        ("-1000.00", 400, "4007801"),
        ("abc", 400, "4007801"),
    ],
    ids=["above-remaining", "zero", "fraction", "negative", "not-a-number"],
)
async def test_bad_refund_amounts_answer_snap_codes_and_write_nothing(
    running: RunningPlatform, value: str, status: int, code: str
) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    partner = await register_partner(running, [ids["merchant_id"]])
    reference = await paid_qr(running, partner, ids)
    answer = await partner.call(REFUND, refund_body(reference, "RF-BAD", value))
    assert answer.status_code == status, answer.text
    assert answer.json()["responseCode"] == code
    assert await refund_rows(running, reference) == []


async def test_refund_of_an_unpaid_or_anothers_qr_or_without_its_number(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    partner = await register_partner(running, [ids["merchant_id"]])
    unpaid = (await partner.generate(ids, "10000.00")).json()["referenceNo"]
    answer = await partner.call(REFUND, refund_body(unpaid, "RF-U", "1000.00"))
    assert answer.status_code == 403 and answer.json()["responseCode"] == "4037815"
    # Another partner's paid QR, even for the same merchant, is not found.
    reference = await paid_qr(running, partner, ids)
    intruder = await register_partner(running, [ids["merchant_id"]])
    foreign = await intruder.call(REFUND, refund_body(reference, "RF-X", "1000.00"))
    assert foreign.status_code == 404 and foreign.json()["responseCode"] == "4047801"
    missing = {"originalReferenceNo": reference, "refundAmount": {"value": "1000.00", "currency": "IDR"}}
    answer = await partner.call(REFUND, missing)
    assert answer.status_code == 400 and answer.json()["responseCode"] == "4007802"
    assert await refund_rows(running, reference) == [] and await refund_rows(running, unpaid) == []


async def test_refund_is_audited_with_its_answer(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    partner = await register_partner(running, [ids["merchant_id"]])
    reference = await paid_qr(running, partner, ids)
    await partner.call(REFUND, refund_body(reference, "RF-AUD", "1000.00"))

    async def audited() -> bool:
        codes = await running.platform.db.pool.fetch(
            "SELECT action, payload->>'response_code' AS code FROM audit_logs WHERE actor_id = $1", partner.id
        )
        return ("partner.snap.qr-mpm-refund", "2007800") in [(r["action"], r["code"]) for r in codes]

    assert await eventually(audited, timeout=10)
