"""Refunds through the merchant's SNAP acquirer: qr-mpm-refund to the acquirer simulator running as
its own process over HTTP. Success writes the ledger; a refusal fails the refund and frees its amount;
no answer leaves it pending (reserved) until a retry gets one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx
import pytest

from qris_soundbox.core.snap import wire
from tests.acquirers.simulator import simulator_process
from tests.finance.helpers import merchant_with_payments
from tests.onboarding import onboarded_terminal
from tests.partners.helpers import REFUND, register_partner
from tests.partners.test_refunds import paid_qr, refund_body
from tests.refunds.helpers import ledger_rows, refund, transaction
from tests.support import RunningPlatform

REFUND_LIMIT = 30_000


@pytest.fixture(scope="module")
async def simulator() -> AsyncIterator[dict]:
    with TemporaryDirectory() as directory:
        args = ("--no-notify", "--refund-limit", str(REFUND_LIMIT))
        async with simulator_process(Path(directory) / "sim.pem", *args) as started:
            yield {"url": started.url, "client_key": started.client_key, "public_key_pem": started.public_key_pem}


async def snap_acquirer(running: RunningPlatform, simulator: dict, code: str, base_url: str) -> None:
    made = await running.http.post(
        "/admin/acquirers",
        json={
            "code": code,
            "name": code.upper(),
            "protocol": "snap",
            "settings": {
                "client_key": f"{code}-key",
                "public_key_pem": simulator["public_key_pem"],
                "notify_signature": "asymmetric",
                "base_url": base_url,
                "client_secret": "platform-hmac-secret",
                "private_key_pem": wire.generate_private_key_pem(),
            },
        },
        headers=running.admin_headers,
    )
    assert made.status_code == 201, made.text


async def attach(running: RunningPlatform, ids: dict, code: str) -> None:
    answer = await running.http.put(
        f"/admin/merchants/{ids['merchant_id']}/acquirer",
        json={"acquirer_code": code, "acquirer_merchant_id": f"M-{code}"},
        headers=running.admin_headers,
    )
    assert answer.status_code == 200, answer.text


async def snap_merchant(running: RunningPlatform, simulator: dict, code: str, base_url: str) -> dict:
    await snap_acquirer(running, simulator, code, base_url)
    ids = await merchant_with_payments(running, [100_000], fee_bps=70)
    await attach(running, ids, code)
    return ids


async def simulator_stats(simulator: dict) -> dict:
    async with httpx.AsyncClient(base_url=simulator["url"]) as http:
        return (await http.get("/simulator/stats")).json()


async def test_refund_goes_through_the_acquirer_and_its_refusal_frees_the_amount(
    running: RunningPlatform, simulator: dict
) -> None:
    ids = await snap_merchant(running, simulator, "simbank", simulator["url"])
    txn_id = ids["transaction_ids"][0]
    ok = await refund(running, txn_id, 10_000)
    assert ok.status_code == 201, ok.text
    made = ok.json()
    assert made["status"] == "succeeded" and made["acquirer_code"] == "simbank" and made["acquirer_refund_no"]
    assert (await simulator_stats(simulator))["refund"] == 1
    refused = await refund(running, txn_id, REFUND_LIMIT + 1)
    assert refused.status_code == 201, refused.text
    failed = refused.json()
    assert failed["status"] == "failed" and "4037814" in failed["failure_reason"]
    # Only the successful refund is in the ledger, and the failed one's amount is free again.
    assert [r["amount"] for r in await ledger_rows(running, txn_id) if r["entry_type"] == "refund_gross"] == [10_000]
    assert (await transaction(running, txn_id))["refunded_amount"] == 10_000
    rest = await refund(running, txn_id, REFUND_LIMIT)
    assert rest.json()["status"] == "succeeded"
    assert (await transaction(running, txn_id))["refunded_amount"] == 10_000 + REFUND_LIMIT


async def test_no_answer_leaves_the_refund_pending_until_a_retry(running: RunningPlatform, simulator: dict) -> None:
    ids = await snap_merchant(running, simulator, "gonebank", "http://127.0.0.1:9")
    txn_id = ids["transaction_ids"][0]
    asked = await refund(running, txn_id, 60_000)
    assert asked.status_code == 201, asked.text
    pending = asked.json()
    assert pending["status"] == "pending"
    # Reserved: the acquirer may have paid it, so the 40,000 left is all that can be asked for.
    over = await refund(running, txn_id, 40_001)
    assert over.status_code == 409 and over.json()["error"]["details"]["remaining"] == 40_000
    assert [r for r in await ledger_rows(running, txn_id) if r["refund_id"]] == []
    retry = await running.http.post(f"/admin/refunds/{pending['id']}/retry", headers=running.admin_headers)
    assert retry.status_code == 200 and retry.json()["status"] == "pending"
    moved = await running.http.patch(
        "/admin/acquirers/gonebank", json={"settings": {"base_url": simulator["url"]}}, headers=running.admin_headers
    )
    assert moved.status_code == 200, moved.text
    # 60,000 is above the simulator's limit: the acquirer's answer is a refusal, and it fails the refund.
    retry = await running.http.post(f"/admin/refunds/{pending['id']}/retry", headers=running.admin_headers)
    assert retry.status_code == 200 and retry.json()["status"] == "failed"
    assert (await transaction(running, txn_id))["status"] == "paid"


async def test_a_partners_refund_answers_what_the_acquirer_said(running: RunningPlatform, simulator: dict) -> None:
    await snap_acquirer(running, simulator, "partnerbank", simulator["url"])
    # silentbank issues the QR (its merchants' QRs come from its qr-mpm-generate), then goes silent.
    await snap_acquirer(running, simulator, "silentbank", simulator["url"])
    for code, value, expected in (
        ("partnerbank", "10000.00", (200, "2007800")),
        ("partnerbank", f"{REFUND_LIMIT + 1}.00", (403, "4037815")),
        ("silentbank", "10000.00", (202, "2027800")),
    ):
        ids = await onboarded_terminal(running, qris_ready=True)
        await attach(running, ids, code)
        partner = await register_partner(running, [ids["merchant_id"]])
        reference = await paid_qr(running, partner, ids, 50_000)
        if code == "silentbank":
            gone = await running.http.patch(
                "/admin/acquirers/silentbank",
                json={"settings": {"base_url": "http://127.0.0.1:9"}},
                headers=running.admin_headers,
            )
            assert gone.status_code == 200, gone.text
        answer = await partner.call(REFUND, refund_body(reference, f"RF-{code}", value))
        assert (answer.status_code, answer.json()["responseCode"]) == expected, answer.text
        status = await running.platform.db.pool.fetchval(
            "SELECT status FROM refunds WHERE transaction_id = $1", reference
        )
        assert status == {200: "succeeded", 403: "failed", 202: "pending"}[expected[0]]
