"""Signed notifications to partners, through real receiver processes over HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.devices.helpers import eventually
from tests.onboarding import onboarded_terminal
from tests.partners.helpers import CANCEL, receiver, register_partner
from tests.partners.test_services import pay
from tests.support import RunningPlatform


def verifies(public_pem: str, request: dict, notify_url: str) -> bool:
    """SPEC §14's signature over the bytes received, checked with ``cryptography`` alone."""
    key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    body = request["body"].encode()
    headers = {name.lower(): value for name, value in request["headers"].items()}
    message = f"POST:{urlsplit(notify_url).path}:{hashlib.sha256(body).hexdigest()}:{headers['x-timestamp']}"
    try:
        key.verify(base64.b64decode(headers["x-signature"]), message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return False
    return True


async def outbox_states(running: RunningPlatform, partner_id: str) -> list[str]:
    async with running.platform.db.transaction() as conn:
        rows = await conn.fetch("SELECT status FROM partner_outbox WHERE partner_id = $1 ORDER BY id", partner_id)
    return [row["status"] for row in rows]


async def test_a_failing_receiver_gets_each_notification_once_in_order_signed(
    running: RunningPlatform, tmp_path: Path
) -> None:
    key = await running.http.get("/snap/public-key.pem")
    assert key.status_code == 200 and key.headers["x-key-id"]
    async with receiver(tmp_path, "fail:3") as sink:
        ids = await onboarded_terminal(running, qris_ready=True)
        partner = await register_partner(running, [ids["merchant_id"]], sink.url)
        generated = (await partner.generate(ids, "20000.00")).json()
        await partner.call(CANCEL, {"originalReferenceNo": generated["referenceNo"]})
        await pay(running, generated["referenceNo"], 20000)

        async def delivered() -> bool:
            return await outbox_states(running, partner.id) == ["delivered", "delivered"]

        assert await eventually(delivered, timeout=30)
        requests = sink.requests()
    # Three refusals, then the cancellation once, then the (late) payment once: never out of order.
    bodies = [json.loads(request["body"]) for request in requests]
    assert [body["latestTransactionStatus"] for body in bodies] == ["05", "05", "05", "05", "00"]
    assert len({request["headers"]["X-EXTERNAL-ID"] for request in requests[:4]}) == 1
    for request in requests:
        assert verifies(key.text, request, sink.url)
        assert request["headers"]["X-KEY-ID"] == key.headers["x-key-id"]
        assert request["body"] == json.dumps(json.loads(request["body"]), separators=(",", ":"))  # minified
    paid = bodies[-1]
    assert paid["originalReferenceNo"] == generated["referenceNo"]
    assert paid["originalPartnerReferenceNo"] == generated["partnerReferenceNo"]
    assert paid["amount"] == {"value": "20000.00", "currency": "IDR"}
    log = (await running.http.get(f"/admin/partners/{partner.id}/deliveries", headers=running.admin_headers)).json()
    assert [attempt["outcome"] for attempt in reversed(log["attempts"])] == ["retry"] * 3 + ["delivered"] * 2
    assert all(attempt["latency_ms"] >= 0 for attempt in log["attempts"])


@pytest.mark.parametrize("mode", ["hang", "500", "non-success", "redirect"])
async def test_a_bad_receiver_never_stalls_another_partner(running: RunningPlatform, tmp_path: Path, mode: str) -> None:
    async with receiver(tmp_path, mode) as bad_sink, receiver(tmp_path, "ok") as good_sink:
        ids = await onboarded_terminal(running, qris_ready=True)
        bad = await register_partner(running, [ids["merchant_id"]], bad_sink.url)
        good = await register_partner(running, [ids["merchant_id"]], good_sink.url)
        bad_qr = (await bad.generate(ids, "5000.00")).json()
        await pay(running, bad_qr["referenceNo"], 5000)
        await bad_sink.wait_for(1)  # the bad receiver holds (or refused) its first delivery
        good_qr = (await good.generate(ids, "6000.00")).json()
        await pay(running, good_qr["referenceNo"], 6000)
        received = await good_sink.wait_for(1, timeout=10)
        assert json.loads(received[0]["body"])["originalReferenceNo"] == good_qr["referenceNo"]

        async def dead() -> bool:
            return await outbox_states(running, bad.id) == ["dead"]

        assert await eventually(dead, timeout=40)
        if mode == "redirect":
            assert all(request["path"] != "/followed" for request in bad_sink.requests())
        # An operator resends a dead notification: it is tried again from the first attempt.
        notification = (
            await running.http.get(f"/admin/partners/{bad.id}/deliveries", headers=running.admin_headers)
        ).json()["notifications"][0]
        resent = await running.http.post(
            f"/admin/partners/{bad.id}/notifications/{notification['id']}/resend", headers=running.admin_headers
        )
        assert resent.status_code == 202, resent.text
        attempts = len(bad_sink.requests())
        await bad_sink.wait_for(attempts + 1)
