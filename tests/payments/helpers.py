"""Signed callbacks and a ready merchant/terminal for payment tests."""

from __future__ import annotations

import hashlib
import random
import hmac
import time
import uuid
from datetime import UTC, datetime

import msgspec

from qris_soundbox.core.ids import new_id
from tests.support import WEBHOOK_SECRET, RunningPlatform


def signed_headers(body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Callback-Timestamp": ts, "X-Callback-Signature": signature, "Content-Type": "application/json"}


def callback_body(*, amount: int, transaction_id: str | None = None, terminal_id: str | None = None,
                  status: str = "paid", event_id: str | None = None, provider_reference: str | None = None) -> dict:
    body = {
        "event_id": event_id or f"evt-{uuid.uuid4().hex}",
        "status": status,
        "amount": amount,
        "currency": "IDR",
        "provider_reference": provider_reference or f"RRN{uuid.uuid4().hex[:12].upper()}",
        "paid_at": datetime.now(UTC).isoformat(),
    }
    if transaction_id:
        body["transaction_id"] = transaction_id
    if terminal_id:
        body["terminal_id"] = terminal_id
    return body


async def post_callback(running: RunningPlatform, body: dict, **header_kwargs: object):
    raw = msgspec.json.encode(body)
    return await running.http.post("/integrations/qris/callback", content=raw, headers=signed_headers(raw, **header_kwargs))


async def active_terminal(running: RunningPlatform, *, fee_bps: int | None = None, status: str = "active") -> dict:
    """A merchant (``status``), outlet and terminal written straight to the database."""
    db = running.platform.db
    merchant_id, outlet_id, terminal_id = new_id("mer"), new_id("out"), new_id("ter")
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO merchants (id, code, name, city, mcc, status, fee_bps) VALUES ($1, $2, $3, 'Jakarta', '5499', $4, $5)",
            merchant_id, f"M{merchant_id[-10:]}", "Warung Test", status, fee_bps,
        )
        await conn.execute("INSERT INTO outlets (id, merchant_id, name) VALUES ($1, $2, 'Outlet')", outlet_id, merchant_id)
        await conn.execute(
            "INSERT INTO terminals (id, outlet_id, merchant_id, name, terminal_code) VALUES ($1, $2, $3, 'Kasir 1', $4)",
            terminal_id, outlet_id, merchant_id, f"T{terminal_id[-8:]}",
        )
    return {"merchant_id": merchant_id, "outlet_id": outlet_id, "terminal_id": terminal_id}


async def make_qris_ready(running: RunningPlatform, merchant_id: str, name: str = "Warung Bu Sri") -> None:
    """Give a merchant what a dynamic QRIS needs: a (unique) NMID and a postal code."""
    nmid = "ID" + "".join(random.choices("0123456789", k=13))
    await running.platform.db.pool.execute(
        "UPDATE merchants SET nmid = $2, postal_code = '10110', name = $3 WHERE id = $1", merchant_id, nmid, name)


async def pending_transaction(running: RunningPlatform, terminal_id: str, amount: int) -> str:
    from qris_soundbox.core.payments import transactions as txns

    platform = running.platform
    async with platform.db.transaction() as conn:
        terminal = await txns.payable_terminal(platform.db, conn, terminal_id)
        row = await txns.create_transaction(platform.db, conn, platform.settings, terminal, kind="dynamic",
                                            amount=amount, source="admin")
    return row["id"]
