"""Signed callbacks and a ready merchant/terminal for payment tests."""

from __future__ import annotations

import random

import msgspec

from qris_soundbox.core.ids import new_id
from qris_soundbox.tools.api import callback_body, callback_headers
from tests.support import WEBHOOK_SECRET, RunningPlatform


__all__ = ["active_terminal", "callback_body", "make_qris_ready", "pending_transaction", "post_callback",
           "signed_headers"]


def signed_headers(body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> dict[str, str]:
    return callback_headers(secret, body, timestamp)


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
