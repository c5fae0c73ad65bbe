"""Midtrans, Xendit (both shapes) and DOKU notifications at /integrations/acquirers/{code}/notify,
signed here with hashlib/hmac directly; a verified one pays through the core callback path."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from tests.devices.helpers import first_message
from tests.payments.helpers import pending_transaction
from tests.payments.test_announcements import bound_soundbox, subscribed
from tests.support import RunningPlatform

SERVER_KEY = "SB-Mid-server-test-0001"
CALLBACK_TOKEN = "xnd-callback-token-0001"
DOKU_SECRET = "doku-secret-key-0001"
DOKU_CLIENT = "BRN-0001-TEST"


class World(msgspec.Struct):
    terminals: dict[str, str]
    device: dict[str, tuple[str, str]]


@pytest.fixture(scope="module")
async def world(running: RunningPlatform) -> World:
    terminals, device = {}, {}
    for code, protocol, settings in (
        ("mid", "midtrans", {"server_key": SERVER_KEY}),
        ("xnd", "xendit", {"callback_token": CALLBACK_TOKEN}),
        ("doku", "doku", {"client_id": DOKU_CLIENT, "secret_key": DOKU_SECRET}),
    ):
        made = await running.http.post(
            "/admin/acquirers",
            json={"code": code, "name": code, "protocol": protocol, "settings": settings},
            headers=running.admin_headers,
        )
        assert made.status_code == 201, made.text
        ids, device_id, secret = await bound_soundbox(running)
        attached = await running.http.put(
            f"/admin/merchants/{ids['merchant_id']}/acquirer",
            json={"acquirer_code": code},
            headers=running.admin_headers,
        )
        assert attached.status_code == 200, attached.text
        terminals[code] = ids["terminal_id"]
        device[code] = (device_id, secret)
    return World(terminals=terminals, device=device)


def midtrans_body(order_id: str, amount: int, status: str = "settlement", key: str = SERVER_KEY) -> dict[str, Any]:
    gross = f"{amount}.00"
    return {
        "transaction_id": uuid.uuid4().hex,
        "order_id": order_id,
        "status_code": "200",
        "gross_amount": gross,
        "transaction_status": status,
        "payment_type": "qris",
        "signature_key": hashlib.sha512(f"{order_id}200{gross}{key}".encode()).hexdigest(),
    }


def doku_headers(raw: bytes, *, secret: str = DOKU_SECRET, code: str = "doku", offset_s: int = 0) -> dict[str, str]:
    request_id = uuid.uuid4().hex
    ts = (datetime.now(UTC) + timedelta(seconds=offset_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(hashlib.sha256(raw).digest()).decode()
    lines = (
        f"Client-Id:{DOKU_CLIENT}\nRequest-Id:{request_id}\nRequest-Timestamp:{ts}\n"
        f"Request-Target:/integrations/acquirers/{code}/notify\nDigest:{digest}"
    )
    signature = base64.b64encode(hmac.new(secret.encode(), lines.encode(), hashlib.sha256).digest()).decode()
    return {
        "Content-Type": "application/json",
        "Client-Id": DOKU_CLIENT,
        "Request-Id": request_id,
        "Request-Timestamp": ts,
        "Signature": f"HMACSHA256={signature}",
    }


def doku_body(invoice: str, amount: int, status: str = "SUCCESS") -> bytes:
    return json.dumps(
        {
            "order": {"invoice_number": invoice, "amount": amount},
            "transaction": {"status": status, "date": "2026-12-07T03:55:00Z"},
        }
    ).encode()


async def status_of(running: RunningPlatform, transaction_id: str) -> str:
    return await running.platform.db.pool.fetchval("SELECT status FROM transactions WHERE id = $1", transaction_id)


async def test_midtrans_payment_is_announced(running: RunningPlatform, world: World) -> None:
    device_id, secret = world.device["mid"]
    transaction_id = await pending_transaction(running, world.terminals["mid"], 12_000)
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        answer = await running.http.post(
            "/integrations/acquirers/mid/notify", json=midtrans_body(transaction_id, 12_000)
        )
        assert answer.status_code == 200, answer.text
        message = await first_message(device, timeout=5)
        assert message is not None and msgspec.json.decode(message.payload)["amount"] == 12_000
        payload = msgspec.json.decode(message.payload)
        await device.publish(
            f"devices/{device_id}/uplink/payment/ack", msgspec.json.encode({"message_id": payload["message_id"]}), qos=1
        )
    assert await status_of(running, transaction_id) == "paid"


@pytest.mark.parametrize("shape", ["event", "legacy"])
async def test_xendit_both_shapes(running: RunningPlatform, world: World, shape: str) -> None:
    transaction_id = await pending_transaction(running, world.terminals["xnd"], 8_000)
    if shape == "event":
        body: dict[str, Any] = {
            "event": "qr.payment",
            "data": {
                "id": f"qrpy_{uuid.uuid4().hex}",
                "reference_id": transaction_id,
                "amount": 8000,
                "currency": "IDR",
                "status": "SUCCEEDED",
            },
        }
    else:
        body = {
            "id": f"qrpy_{uuid.uuid4().hex}",
            "amount": 8000,
            "status": "COMPLETED",
            "qr_code": {"id": "qr_1", "external_id": transaction_id, "type": "DYNAMIC"},
        }
    refused = await running.http.post(
        "/integrations/acquirers/xnd/notify", json=body, headers={"x-callback-token": CALLBACK_TOKEN + "x"}
    )
    assert refused.status_code == 401 and await status_of(running, transaction_id) == "pending"
    answer = await running.http.post(
        "/integrations/acquirers/xnd/notify", json=body, headers={"x-callback-token": CALLBACK_TOKEN}
    )
    assert answer.status_code == 200, answer.text
    assert await status_of(running, transaction_id) == "paid"


async def test_doku_payment(running: RunningPlatform, world: World) -> None:
    transaction_id = await pending_transaction(running, world.terminals["doku"], 5_000)
    raw = doku_body(transaction_id, 5_000)
    for bad in (
        doku_headers(raw, secret="wrong"),
        doku_headers(raw, code="other"),
        doku_headers(raw, offset_s=-400),
        doku_headers(raw.replace(b"5000", b"5001")),
    ):
        refused = await running.http.post("/integrations/acquirers/doku/notify", content=raw, headers=bad)
        assert refused.status_code == 401, refused.text
    assert await status_of(running, transaction_id) == "pending"
    answer = await running.http.post("/integrations/acquirers/doku/notify", content=raw, headers=doku_headers(raw))
    assert answer.status_code == 200, answer.text
    assert await status_of(running, transaction_id) == "paid"


@pytest.mark.parametrize("case", ["wrong-key", "tampered-amount", "other-acquirers-transaction"])
async def test_midtrans_refusals_write_nothing(running: RunningPlatform, world: World, case: str) -> None:
    terminal = world.terminals["xnd" if case == "other-acquirers-transaction" else "mid"]
    transaction_id = await pending_transaction(running, terminal, 3_000)
    body = midtrans_body(transaction_id, 3_000, key="wrong" if case == "wrong-key" else SERVER_KEY)
    if case == "tampered-amount":
        body["gross_amount"] = "3.00"
    ledger = await running.platform.db.pool.fetchval("SELECT count(*) FROM ledger_entries")
    answer = await running.http.post("/integrations/acquirers/mid/notify", json=body)
    assert answer.status_code == (404 if case == "other-acquirers-transaction" else 401), answer.text
    assert await status_of(running, transaction_id) == "pending"
    assert await running.platform.db.pool.fetchval("SELECT count(*) FROM ledger_entries") == ledger


async def test_midtrans_pending_is_acknowledged(running: RunningPlatform, world: World) -> None:
    transaction_id = await pending_transaction(running, world.terminals["mid"], 4_000)
    answer = await running.http.post(
        "/integrations/acquirers/mid/notify", json=midtrans_body(transaction_id, 4_000, status="pending")
    )
    assert answer.status_code == 200 and answer.json() == {"status": "acknowledged"}
    assert await status_of(running, transaction_id) == "pending"
